#pragma once
// The backend-independent test suite of the Store interface. Every backend (SQLite today,
// etcd later) runs the same suite through a factory; backend-specific tests (durability
// across kill -9, file size) live next to the backend's own test main.

#include <QObject>
#include <QTemporaryDir>

#include <functional>
#include <memory>
#include <string>

#include "engine/store/store.h"

namespace orrery::store::testing {

struct StoreFactory {
  std::string name;
  /// Opens the store kept under `dir` (a fresh, empty directory the first time; the same one
  /// to reopen). The suite compacts explicitly, so backends should not auto-compact.
  std::function<api::Result<std::unique_ptr<Store>>(const std::string& dir)> open;
};

class StoreSuite : public QObject {
  Q_OBJECT

 public:
  explicit StoreSuite(StoreFactory factory) : factory_(std::move(factory)) {}

 private slots:
  void init();
  void cleanup();

  void emptyStoreStartsAtRevisionOne();
  void revisionsAndVersionsFollowEtcd();
  void deleteOfMissingKeyTakesNoRevision();
  void createRefusesExistingKey();
  void compareAndSwapSucceedsAndFails();
  void comparedPutsReportWhatTheyReplaced();
  void compareAndDeleteSucceedsAndFails();
  void txnRunsFailureBranchAtomically();
  void txnWritesShareOneRevision();
  void txnRefusesDuplicateKeys();
  void rangeByPrefixWithLimitMoreAndCount();
  void rangeByKeyRangeKeysOnlyAndCountOnly();
  void rangeAtPastRevision();
  void rangeOutsideHistoryFails();
  void watchReplaysHistoryThenGoesLive();
  void watchFromNowSeesOnlyNewChanges();
  void watchSingleKeyAndPrevKv();
  void watchFromCompactedRevisionEndsWith410();
  void watchCancelIsSynchronous();
  void watchResponsesCarryRevisionAndProgress();
  void compactionKeepsLiveKeysReadable();
  void compactRefusesOldAndFutureRevisions();
  void concurrentWritersGetDistinctRevisions();
  void reopenContinuesFromDisk();

 private:
  std::unique_ptr<Store> open();

  StoreFactory factory_;
  std::unique_ptr<QTemporaryDir> dir_;
  std::unique_ptr<Store> store_;
};

}  // namespace orrery::store::testing
