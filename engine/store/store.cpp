// TODO(store helper): conveniences over txn() and openStore().
