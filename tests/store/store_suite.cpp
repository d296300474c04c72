#include "tests/store/store_suite.h"

#include <QtTest>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "tests/store/watch_collector.h"

namespace orrery::store::testing {
namespace {

const char* why(const api::Status& s) { return s.message().c_str(); }

// Evaluates its argument once: the argument is often the write being checked.
#define CHECK_OK(expr)                                                 \
  do {                                                                 \
    const auto& checked_ = (expr);                                     \
    QVERIFY2(checked_.ok(), checked_.ok() ? "" : why(checked_.status())); \
  } while (0)
#define CHECK_STATUS_OK(expr)                   \
  do {                                          \
    const auto checkedStatus_ = (expr);         \
    QVERIFY2(checkedStatus_.isOk(), why(checkedStatus_)); \
  } while (0)

api::Result<TxnResponse> put(Store& s, const std::string& key, const std::string& value) {
  TxnRequest r;
  r.success.push_back(Operation::put(key, value));
  return s.txn(r);
}

api::Result<TxnResponse> del(Store& s, const std::string& key, bool prefix = false) {
  TxnRequest r;
  Operation op = Operation::del(key);
  op.prefix = prefix;
  r.success.push_back(op);
  return s.txn(r);
}

int64_t currentRevision(Store& s) {
  RangeRequest r;
  r.key = "/";
  r.countOnly = true;
  auto res = s.range(r);
  return res.ok() ? res->revision : -1;
}

std::vector<std::string> keysOf(const std::vector<KeyValue>& kvs) {
  std::vector<std::string> keys;
  for (const auto& kv : kvs) keys.push_back(kv.key);
  return keys;
}

std::string podJson(const std::string& name, int generation) {
  return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
         R"(","namespace":"default","generation":)" + std::to_string(generation) + "}}";
}

}  // namespace

std::unique_ptr<Store> StoreSuite::open() {
  auto store = factory_.open(dir_->path().toStdString());
  if (!store.ok()) {
    qWarning("opening the %s store failed: %s", factory_.name.c_str(), why(store.status()));
    return nullptr;
  }
  return std::move(store).value();
}

void StoreSuite::init() {
  dir_ = std::make_unique<QTemporaryDir>();
  QVERIFY(dir_->isValid());
  store_ = open();
  QVERIFY(store_);
}

void StoreSuite::cleanup() {
  store_.reset();
  dir_.reset();
}

void StoreSuite::emptyStoreStartsAtRevisionOne() {
  QCOMPARE(currentRevision(*store_), int64_t{1});
  auto got = store_->get("/registry/pods/default/a");
  CHECK_OK(got);
  QVERIFY(!got->has_value());
}

void StoreSuite::revisionsAndVersionsFollowEtcd() {
  const std::string key = "/registry/configmaps/default/a";
  auto created = store_->create(key, "{\"v\":1}");
  CHECK_OK(created);
  QCOMPARE(*created, int64_t{2});
  auto kv = store_->get(key);
  CHECK_OK(kv);
  QVERIFY(kv->has_value());
  QCOMPARE((*kv)->value, std::string("{\"v\":1}"));
  QCOMPARE((*kv)->createRevision, int64_t{2});
  QCOMPARE((*kv)->modRevision, int64_t{2});
  QCOMPARE((*kv)->version, int64_t{1});

  auto updated = put(*store_, key, "{\"v\":2}");
  CHECK_OK(updated);
  QCOMPARE(updated->revision, int64_t{3});
  QCOMPARE(updated->results.size(), size_t{1});
  QCOMPARE(updated->results[0].prevKvs.size(), size_t{1});
  QCOMPARE(updated->results[0].prevKvs[0].value, std::string("{\"v\":1}"));
  kv = store_->get(key);
  QCOMPARE((*kv)->createRevision, int64_t{2});
  QCOMPARE((*kv)->modRevision, int64_t{3});
  QCOMPARE((*kv)->version, int64_t{2});

  auto removed = del(*store_, key);
  CHECK_OK(removed);
  QCOMPARE(removed->revision, int64_t{4});
  QCOMPARE(removed->results[0].deleted, int64_t{1});
  kv = store_->get(key);
  CHECK_OK(kv);
  QVERIFY(!kv->has_value());

  // Re-created: a new life, version back to 1.
  auto again = store_->create(key, "{\"v\":3}");
  CHECK_OK(again);
  QCOMPARE(*again, int64_t{5});
  kv = store_->get(key);
  QCOMPARE((*kv)->createRevision, int64_t{5});
  QCOMPARE((*kv)->version, int64_t{1});
  QCOMPARE(currentRevision(*store_), int64_t{5});
}

void StoreSuite::deleteOfMissingKeyTakesNoRevision() {
  CHECK_OK(store_->create("/a", "1"));
  auto r = del(*store_, "/missing");
  CHECK_OK(r);
  QCOMPARE(r->results[0].deleted, int64_t{0});
  QCOMPARE(r->revision, int64_t{2});
  QCOMPARE(currentRevision(*store_), int64_t{2});
}

void StoreSuite::createRefusesExistingKey() {
  CHECK_OK(store_->create("/registry/pods/default/web", podJson("web", 1)));
  auto again = store_->create("/registry/pods/default/web", podJson("web", 2));
  QVERIFY(!again.ok());
  QCOMPARE(again.status().code(), 409);
  QCOMPARE(again.status().reason(), std::string("AlreadyExists"));
  auto kv = store_->get("/registry/pods/default/web");
  QCOMPARE((*kv)->value, podJson("web", 1));  // unchanged
  QCOMPARE(currentRevision(*store_), int64_t{2});
}

void StoreSuite::compareAndSwapSucceedsAndFails() {
  const std::string key = "/registry/pods/default/web";
  auto rev = store_->create(key, podJson("web", 1));
  CHECK_OK(rev);

  auto ok = store_->compareAndSwap(key, *rev, podJson("web", 2));
  CHECK_OK(ok);
  QVERIFY(ok->succeeded);
  QCOMPARE(ok->revision, *rev + 1);

  // A stale writer still holds the old modRevision.
  auto stale = store_->compareAndSwap(key, *rev, podJson("web", 3));
  CHECK_OK(stale);
  QVERIFY(!stale->succeeded);
  QVERIFY(stale->current.has_value());
  QCOMPARE(stale->current->modRevision, *rev + 1);
  QCOMPARE(stale->current->value, podJson("web", 2));
  QCOMPARE(currentRevision(*store_), *rev + 1);

  // Expected modRevision 0 means "must not exist".
  auto absent = store_->compareAndSwap("/registry/pods/default/new", 0, podJson("new", 1));
  CHECK_OK(absent);
  QVERIFY(absent->succeeded);
}

// A put after a compare of its own key reports, and builds on, the row it replaced, also
// when other operations of the transaction come between.
void StoreSuite::comparedPutsReportWhatTheyReplaced() {
  auto first = store_->create("/c/a", "a1");
  CHECK_OK(first);
  CHECK_OK(store_->compareAndSwap("/c/a", *first, "a2"));
  auto a = store_->get("/c/a");
  CHECK_OK(a);
  QCOMPARE((*a)->value, std::string("a2"));
  QCOMPARE((*a)->createRevision, *first);
  QCOMPARE((*a)->version, int64_t{2});

  TxnRequest r;
  Compare cmp;
  cmp.key = "/c/a";
  cmp.target = Compare::Target::kModRevision;
  cmp.op = Compare::Op::kEqual;
  cmp.number = (*a)->modRevision;
  r.compares.push_back(cmp);
  Operation putB = Operation::put("/c/b", "b1");
  putB.prevKv = true;
  Operation putA = Operation::put("/c/a", "a3");
  putA.prevKv = true;
  r.success.push_back(putB);
  r.success.push_back(putA);
  auto res = store_->txn(r);
  CHECK_OK(res);
  QVERIFY(res->succeeded);
  QCOMPARE(res->results.size(), size_t{2});
  QVERIFY(res->results[0].prevKvs.empty());  // /c/b was new
  QCOMPARE(res->results[1].prevKvs.size(), size_t{1});
  QCOMPARE(res->results[1].prevKvs[0].value, std::string("a2"));
  QCOMPARE(res->results[1].prevKvs[0].version, int64_t{2});
  a = store_->get("/c/a");
  QCOMPARE((*a)->value, std::string("a3"));
  QCOMPARE((*a)->version, int64_t{3});
  QCOMPARE((*a)->createRevision, *first);
  auto b = store_->get("/c/b");
  QCOMPARE((*b)->version, int64_t{1});
}

void StoreSuite::compareAndDeleteSucceedsAndFails() {
  const std::string key = "/registry/pods/default/web";
  auto rev = store_->create(key, podJson("web", 1));
  CHECK_OK(rev);
  auto wrong = store_->compareAndDelete(key, *rev + 7);
  CHECK_OK(wrong);
  QVERIFY(!wrong->succeeded);
  QCOMPARE(wrong->current->modRevision, *rev);
  QVERIFY(store_->get(key)->has_value());

  auto right = store_->compareAndDelete(key, *rev);
  CHECK_OK(right);
  QVERIFY(right->succeeded);
  QVERIFY(!store_->get(key)->has_value());

  auto gone = store_->compareAndSwap(key, *rev, podJson("web", 2));
  CHECK_OK(gone);
  QVERIFY(!gone->succeeded);
  QVERIFY(!gone->current.has_value());  // nothing there any more
}

void StoreSuite::txnRunsFailureBranchAtomically() {
  CHECK_OK(store_->create("/k/a", "a1"));
  TxnRequest r;
  Compare cmp;
  cmp.key = "/k/a";
  cmp.target = Compare::Target::kValue;
  cmp.op = Compare::Op::kEqual;
  cmp.value = "not-a1";
  r.compares.push_back(cmp);
  Compare holds;
  holds.key = "/k/a";
  holds.target = Compare::Target::kVersion;
  holds.op = Compare::Op::kEqual;
  holds.number = 1;
  r.compares.push_back(holds);
  r.success.push_back(Operation::put("/k/success-1", "x"));
  r.success.push_back(Operation::put("/k/success-2", "x"));
  r.failure.push_back(Operation::put("/k/failure", "y"));
  r.failure.push_back(Operation::get("/k/a"));
  auto res = store_->txn(r);
  CHECK_OK(res);
  QVERIFY(!res->succeeded);
  QCOMPARE(res->results.size(), size_t{2});
  QCOMPARE(res->results[1].kvs.size(), size_t{1});
  QCOMPARE(res->results[1].kvs[0].value, std::string("a1"));
  QVERIFY(!store_->get("/k/success-1")->has_value());
  QVERIFY(!store_->get("/k/success-2")->has_value());
  QVERIFY(store_->get("/k/failure")->has_value());

  // Greater/Less compares on versions, and compares on absent keys (all zero).
  TxnRequest r2;
  Compare gt;
  gt.key = "/k/a";
  gt.target = Compare::Target::kModRevision;
  gt.op = Compare::Op::kGreater;
  gt.number = 1;
  r2.compares.push_back(gt);
  Compare missing;
  missing.key = "/k/none";
  missing.target = Compare::Target::kCreateRevision;
  missing.op = Compare::Op::kLess;
  missing.number = 1;
  r2.compares.push_back(missing);
  r2.success.push_back(Operation::put("/k/both-held", "z"));
  auto res2 = store_->txn(r2);
  CHECK_OK(res2);
  QVERIFY(res2->succeeded);
  QVERIFY(store_->get("/k/both-held")->has_value());
}

void StoreSuite::txnWritesShareOneRevision() {
  CHECK_OK(store_->create("/k/old", "o"));
  TxnRequest r;
  r.success.push_back(Operation::put("/k/a", "1"));
  r.success.push_back(Operation::put("/k/b", "2"));
  r.success.push_back(Operation::del("/k/old"));
  r.success.push_back(Operation::get("/k/a"));  // reads see the txn's own earlier writes
  auto res = store_->txn(r);
  CHECK_OK(res);
  QVERIFY(res->succeeded);
  QCOMPARE(res->revision, int64_t{3});
  QCOMPARE(res->results[3].kvs.size(), size_t{1});
  QCOMPARE(res->results[3].kvs[0].modRevision, int64_t{3});
  QCOMPARE((*store_->get("/k/a"))->modRevision, int64_t{3});
  QCOMPARE((*store_->get("/k/b"))->modRevision, int64_t{3});
  QVERIFY(!store_->get("/k/old")->has_value());
  QCOMPARE(currentRevision(*store_), int64_t{3});
}

void StoreSuite::txnRefusesDuplicateKeys() {
  TxnRequest r;
  r.success.push_back(Operation::put("/k/a", "1"));
  r.success.push_back(Operation::put("/k/a", "2"));
  auto res = store_->txn(r);
  QVERIFY(!res.ok());
  QCOMPARE(res.status().code(), 400);
  QVERIFY(res.status().message().find("duplicate key") != std::string::npos);

  TxnRequest r2;
  r2.success.push_back(Operation::put("/k/a/b", "1"));
  Operation wipe = Operation::del("/k/a/");
  wipe.prefix = true;
  r2.success.push_back(wipe);
  QCOMPARE(store_->txn(r2).status().code(), 400);
  QCOMPARE(currentRevision(*store_), int64_t{1});
}

void StoreSuite::rangeByPrefixWithLimitMoreAndCount() {
  for (int i = 0; i < 30; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "p%03d", i);
    CHECK_OK(store_->create(std::string("/registry/pods/default/") + name, podJson(name, 1)));
  }
  CHECK_OK(store_->create("/registry/pods/kube-system/dns", podJson("dns", 1)));
  CHECK_OK(store_->create("/registry/pods/default0", "not in the prefix"));
  CHECK_OK(store_->create("/registry/services/default/web", "{}"));

  RangeRequest r;
  r.key = "/registry/pods/default/";
  r.prefix = true;
  r.limit = 10;
  auto res = store_->range(r);
  CHECK_OK(res);
  QCOMPARE(res->kvs.size(), size_t{10});
  QVERIFY(res->more);
  QCOMPARE(res->count, int64_t{30});
  QCOMPARE(res->kvs.front().key, std::string("/registry/pods/default/p000"));
  QCOMPARE(res->kvs.back().key, std::string("/registry/pods/default/p009"));
  QCOMPARE(res->revision, currentRevision(*store_));

  // The next page, as the apiserver's continue token does: start after the last key.
  r.key = res->kvs.back().key + '\0';
  r.rangeEnd = "/registry/pods/default0";
  r.prefix = false;
  r.limit = 25;
  auto next = store_->range(r);
  CHECK_OK(next);
  QCOMPARE(next->kvs.size(), size_t{20});
  QVERIFY(!next->more);
  QCOMPARE(next->count, int64_t{20});
  QCOMPARE(next->kvs.front().key, std::string("/registry/pods/default/p010"));

  RangeRequest all;
  all.key = "/registry/pods/";
  all.prefix = true;
  auto everything = store_->range(all);
  CHECK_OK(everything);
  QCOMPARE(everything->count, int64_t{32});  // default/*, kube-system/dns and "default0"
  QVERIFY(!everything->more);
  auto keys = keysOf(everything->kvs);
  QVERIFY(std::is_sorted(keys.begin(), keys.end()));
  QVERIFY(std::find(keys.begin(), keys.end(), "/registry/services/default/web") == keys.end());
}

void StoreSuite::rangeByKeyRangeKeysOnlyAndCountOnly() {
  for (const char* k : {"/a", "/b", "/c", "/d"}) CHECK_OK(store_->create(k, std::string("v") + k));
  RangeRequest r;
  r.key = "/b";
  r.rangeEnd = "/d";
  r.keysOnly = true;
  auto res = store_->range(r);
  CHECK_OK(res);
  QCOMPARE(keysOf(res->kvs), (std::vector<std::string>{"/b", "/c"}));
  QVERIFY(res->kvs[0].value.empty());
  QCOMPARE(res->kvs[0].modRevision, int64_t{3});

  RangeRequest count;
  count.key = "/";
  count.prefix = true;
  count.countOnly = true;
  auto c = store_->range(count);
  CHECK_OK(c);
  QVERIFY(c->kvs.empty());
  QCOMPARE(c->count, int64_t{4});

  RangeRequest fromKey;  // rangeEnd "\0": every key >= key
  fromKey.key = "/c";
  fromKey.rangeEnd = std::string(1, '\0');
  auto tail = store_->range(fromKey);
  CHECK_OK(tail);
  QCOMPARE(keysOf(tail->kvs), (std::vector<std::string>{"/c", "/d"}));

  RangeRequest single;
  single.key = "/c";
  auto one = store_->range(single);
  CHECK_OK(one);
  QCOMPARE(one->kvs.size(), size_t{1});
  QCOMPARE(one->kvs[0].value, std::string("v/c"));
}

void StoreSuite::rangeAtPastRevision() {
  CHECK_OK(put(*store_, "/k/a", "a1"));  // 2
  CHECK_OK(put(*store_, "/k/a", "a2"));  // 3
  CHECK_OK(put(*store_, "/k/b", "b1"));  // 4
  CHECK_OK(del(*store_, "/k/a"));        // 5
  CHECK_OK(put(*store_, "/k/c", "c1"));  // 6

  auto at = [&](int64_t rev) {
    RangeRequest r;
    r.key = "/k/";
    r.prefix = true;
    r.revision = rev;
    return store_->range(r);
  };
  auto r2 = at(2);
  CHECK_OK(r2);
  QCOMPARE(keysOf(r2->kvs), (std::vector<std::string>{"/k/a"}));
  QCOMPARE(r2->kvs[0].value, std::string("a1"));
  QCOMPARE(r2->kvs[0].version, int64_t{1});

  auto r3 = at(3);
  CHECK_OK(r3);
  QCOMPARE(r3->kvs[0].value, std::string("a2"));
  QCOMPARE(r3->kvs[0].createRevision, int64_t{2});
  QCOMPARE(r3->kvs[0].modRevision, int64_t{3});
  QCOMPARE(r3->kvs[0].version, int64_t{2});

  auto r4 = at(4);
  CHECK_OK(r4);
  QCOMPARE(keysOf(r4->kvs), (std::vector<std::string>{"/k/a", "/k/b"}));
  auto r5 = at(5);
  CHECK_OK(r5);
  QCOMPARE(keysOf(r5->kvs), (std::vector<std::string>{"/k/b"}));

  RangeRequest limited;
  limited.key = "/k/";
  limited.prefix = true;
  limited.revision = 4;
  limited.limit = 1;
  auto page = store_->range(limited);
  CHECK_OK(page);
  QCOMPARE(page->kvs.size(), size_t{1});
  QVERIFY(page->more);
  QCOMPARE(page->count, int64_t{2});
  // A page that stops before the end still counts the rest, without the deleted /k/a.
  limited.revision = 6;
  auto later = store_->range(limited);
  CHECK_OK(later);
  QCOMPARE(keysOf(later->kvs), (std::vector<std::string>{"/k/b"}));
  QVERIFY(later->more);
  QCOMPARE(later->count, int64_t{2});
  limited.limit = 2;
  auto whole = store_->range(limited);
  CHECK_OK(whole);
  QCOMPARE(keysOf(whole->kvs), (std::vector<std::string>{"/k/b", "/k/c"}));
  QVERIFY(!whole->more);
  QCOMPARE(whole->count, int64_t{2});

  RangeRequest single;
  single.key = "/k/a";
  single.revision = 3;
  auto one = store_->range(single);
  CHECK_OK(one);
  QCOMPARE(one->kvs.size(), size_t{1});
  QCOMPARE(one->kvs[0].value, std::string("a2"));
}

void StoreSuite::rangeOutsideHistoryFails() {
  CHECK_OK(put(*store_, "/k/a", "1"));
  CHECK_OK(put(*store_, "/k/a", "2"));
  CHECK_OK(put(*store_, "/k/a", "3"));  // revision 4
  RangeRequest future;
  future.key = "/k/a";
  future.revision = 99;
  auto f = store_->range(future);
  QVERIFY(!f.ok());
  QCOMPARE(f.status().code(), 400);
  QVERIFY(f.status().message().find("future revision") != std::string::npos);

  CHECK_STATUS_OK(store_->compact(3));
  RangeRequest old;
  old.key = "/k/a";
  old.revision = 2;
  auto o = store_->range(old);
  QVERIFY(!o.ok());
  QCOMPARE(o.status().code(), 410);
  QCOMPARE(o.status().reason(), std::string("Expired"));
  QCOMPARE(o.status().message(), std::string("required revision has been compacted"));
}

void StoreSuite::watchReplaysHistoryThenGoesLive() {
  for (int i = 0; i < 5; ++i) CHECK_OK(put(*store_, "/w/k" + std::to_string(i % 2), std::to_string(i)));
  CHECK_OK(put(*store_, "/other/x", "not watched"));  // revision 7
  CHECK_OK(del(*store_, "/w/k0"));                    // revision 8

  WatchCollector got;
  WatchRequest w;
  w.key = "/w/";
  w.startRevision = 3;
  auto handle = store_->watch(w, got.callback());
  CHECK_OK(handle);
  // History: revisions 3,4,5,6 (puts) and 8 (delete).
  QVERIFY(got.waitForEvents(5));
  for (int i = 0; i < 4; ++i) CHECK_OK(put(*store_, "/w/live" + std::to_string(i), "l"));
  QVERIFY(got.waitForEvents(9));
  QTest::qWait(50);  // nothing extra may arrive

  auto events = got.events();
  QCOMPARE(events.size(), size_t{9});
  std::vector<int64_t> revs;
  for (const auto& e : events) revs.push_back(e.kv.modRevision);
  QCOMPARE(revs, (std::vector<int64_t>{3, 4, 5, 6, 8, 9, 10, 11, 12}));
  QCOMPARE(events[0].kv.key, std::string("/w/k1"));
  QCOMPARE(events[0].kv.value, std::string("1"));
  QCOMPARE(events[0].type, Event::Type::kPut);
  QCOMPARE(events[4].type, Event::Type::kDelete);
  QCOMPARE(events[4].kv.key, std::string("/w/k0"));
  QCOMPARE(events[5].kv.key, std::string("/w/live0"));
  QCOMPARE(events[5].kv.version, int64_t{1});
  QCOMPARE(got.terminals(), 0);
}

void StoreSuite::watchFromNowSeesOnlyNewChanges() {
  CHECK_OK(put(*store_, "/w/before", "b"));
  WatchCollector got;
  WatchRequest w;
  w.key = "/w/";
  auto handle = store_->watch(w, got.callback());
  CHECK_OK(handle);
  auto after = put(*store_, "/w/after", "a");
  CHECK_OK(after);
  QVERIFY(got.waitForEvents(1));
  QTest::qWait(50);
  auto events = got.events();
  QCOMPARE(events.size(), size_t{1});
  QCOMPARE(events[0].kv.key, std::string("/w/after"));
  QCOMPARE(events[0].kv.modRevision, after->revision);
}

void StoreSuite::watchSingleKeyAndPrevKv() {
  CHECK_OK(put(*store_, "/w/a", "1"));   // 2
  CHECK_OK(put(*store_, "/w/ab", "x"));  // 3 (same prefix, other key)
  CHECK_OK(put(*store_, "/w/a", "2"));   // 4

  WatchCollector got;
  WatchRequest w;
  w.key = "/w/a";
  w.prefix = false;
  w.prevKv = true;
  w.startRevision = 2;
  auto handle = store_->watch(w, got.callback());
  CHECK_OK(handle);
  QVERIFY(got.waitForEvents(2));
  CHECK_OK(del(*store_, "/w/a"));  // 5, live
  QVERIFY(got.waitForEvents(3));
  auto events = got.events();
  QCOMPARE(events.size(), size_t{3});
  QVERIFY(!events[0].prevKv.has_value());  // the create
  QVERIFY(events[1].prevKv.has_value());   // replayed update
  QCOMPARE(events[1].prevKv->value, std::string("1"));
  QCOMPARE(events[1].prevKv->modRevision, int64_t{2});
  QCOMPARE(events[2].type, Event::Type::kDelete);
  QCOMPARE(events[2].kv.modRevision, int64_t{5});
  QVERIFY(events[2].kv.value.empty());
  QVERIFY(events[2].prevKv.has_value());  // live delete
  QCOMPARE(events[2].prevKv->value, std::string("2"));
  QCOMPARE(events[2].prevKv->version, int64_t{2});
}

void StoreSuite::watchFromCompactedRevisionEndsWith410() {
  for (int i = 0; i < 6; ++i) CHECK_OK(put(*store_, "/w/a", std::to_string(i)));  // 2..7
  CHECK_STATUS_OK(store_->compact(5));
  WatchCollector got;
  WatchRequest w;
  w.key = "/w/";
  w.startRevision = 3;
  auto handle = store_->watch(w, got.callback());
  CHECK_OK(handle);
  QVERIFY(got.waitForTerminal());
  CHECK_OK(put(*store_, "/w/a", "later"));
  QTest::qWait(50);
  QCOMPARE(got.callbacks(), 1);  // the 410 is the only and last callback
  QVERIFY(got.events().empty());
  auto end = got.terminal();
  QCOMPARE(end.status.code(), 410);
  QCOMPARE(end.status.reason(), std::string("Expired"));
  QCOMPARE(end.compactRevision, int64_t{5});

  // From the compact revision itself is still served.
  WatchCollector ok;
  w.startRevision = 5;
  auto h2 = store_->watch(w, ok.callback());
  CHECK_OK(h2);
  QVERIFY(ok.waitForEvents(4));  // revisions 5, 6, 7, 8
  QCOMPARE(ok.events().front().kv.modRevision, int64_t{5});
  QCOMPARE(ok.terminals(), 0);
}

void StoreSuite::watchCancelIsSynchronous() {
  std::atomic<bool> cancelled{false};
  std::atomic<int> afterCancel{0};
  std::atomic<int> calls{0};
  WatchRequest w;
  w.key = "/w/";
  auto handle = store_->watch(w, [&](const WatchResponse&) {
    if (cancelled) ++afterCancel;
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a slow consumer
  });
  CHECK_OK(handle);
  std::thread writer([&] {
    for (int i = 0; i < 40; ++i) (void)put(*store_, "/w/k" + std::to_string(i), "v");
  });
  QTRY_VERIFY_WITH_TIMEOUT(calls.load() > 0, 10000);
  (*handle)->cancel();
  cancelled = true;
  writer.join();
  QTest::qWait(100);
  QCOMPARE(afterCancel.load(), 0);
  (*handle)->cancel();  // idempotent
}

void StoreSuite::watchResponsesCarryRevisionAndProgress() {
  CHECK_OK(put(*store_, "/a/x", "1"));  // 2
  WatchCollector got;
  WatchRequest w;
  w.key = "/a/";
  w.startRevision = 2;
  w.progressNotify = true;
  auto handle = store_->watch(w, got.callback());
  CHECK_OK(handle);
  QVERIFY(got.waitForEvents(1));
  auto revs = got.revisions();
  QVERIFY(!revs.empty());
  QVERIFY(revs.back() >= 2);

  // Writes outside the watched prefix move the store on: a progress notification says so.
  auto other = put(*store_, "/b/y", "2");
  CHECK_OK(other);
  QTRY_VERIFY_WITH_TIMEOUT(got.progressNotifications() > 0 &&
                               got.revisions().back() == other->revision,
                           10000);
  QCOMPARE(got.events().size(), size_t{1});

  auto mine = put(*store_, "/a/z", "3");
  CHECK_OK(mine);
  QVERIFY(got.waitForEvents(2));
  QTRY_COMPARE_WITH_TIMEOUT(got.revisions().back(), mine->revision, 10000);
  revs = got.revisions();
  QVERIFY(std::is_sorted(revs.begin(), revs.end()));

  // Without progressNotify, writes elsewhere are not reported.
  WatchCollector quiet;
  w.progressNotify = false;
  w.startRevision = 0;
  auto h2 = store_->watch(w, quiet.callback());
  CHECK_OK(h2);
  CHECK_OK(put(*store_, "/b/y", "4"));
  QTest::qWait(100);
  QCOMPARE(quiet.callbacks(), 0);
}

void StoreSuite::compactionKeepsLiveKeysReadable() {
  CHECK_OK(put(*store_, "/c/a", "a1"));  // 2: never changed again
  CHECK_OK(put(*store_, "/c/b", "b1"));  // 3
  CHECK_OK(put(*store_, "/c/b", "b2"));  // 4
  CHECK_OK(put(*store_, "/c/d", "d1"));  // 5
  CHECK_OK(del(*store_, "/c/d"));        // 6
  CHECK_OK(put(*store_, "/c/b", "b3"));  // 7
  CHECK_STATUS_OK(store_->compact(6));

  RangeRequest r;
  r.key = "/c/";
  r.prefix = true;
  r.revision = 6;
  auto at6 = store_->range(r);
  CHECK_OK(at6);
  QCOMPARE(keysOf(at6->kvs), (std::vector<std::string>{"/c/a", "/c/b"}));
  QCOMPARE(at6->kvs[0].value, std::string("a1"));
  QCOMPARE(at6->kvs[0].modRevision, int64_t{2});
  QCOMPARE(at6->kvs[1].value, std::string("b2"));
  QCOMPARE(at6->kvs[1].version, int64_t{2});

  r.revision = 0;
  auto now = store_->range(r);
  CHECK_OK(now);
  QCOMPARE(now->kvs[1].value, std::string("b3"));
  QCOMPARE(now->kvs[1].version, int64_t{3});

  auto stats = store_->stats();
  CHECK_OK(stats);
  QCOMPARE(stats->compactRevision, int64_t{6});
  QCOMPARE(stats->revision, int64_t{7});
  QCOMPARE(stats->keys, int64_t{2});

  // A second compaction past more changes still keeps the newest version of each key.
  CHECK_OK(put(*store_, "/c/e", "e1"));  // 8
  CHECK_STATUS_OK(store_->compact(8));
  r.revision = 8;
  auto at8 = store_->range(r);
  CHECK_OK(at8);
  QCOMPARE(keysOf(at8->kvs), (std::vector<std::string>{"/c/a", "/c/b", "/c/e"}));
  QCOMPARE(at8->kvs[1].value, std::string("b3"));
}

void StoreSuite::compactRefusesOldAndFutureRevisions() {
  CHECK_OK(put(*store_, "/c/a", "1"));
  CHECK_OK(put(*store_, "/c/a", "2"));  // 3
  auto future = store_->compact(10);
  QCOMPARE(future.code(), 400);
  CHECK_STATUS_OK(store_->compact(3));
  auto again = store_->compact(3);
  QCOMPARE(again.code(), 410);
  QCOMPARE(again.message(), std::string("required revision has been compacted"));
}

void StoreSuite::concurrentWritersGetDistinctRevisions() {
  constexpr int kThreads = 8, kPerThread = 150;
  std::vector<std::vector<int64_t>> revs(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = store_->create("/registry/pods/t" + std::to_string(t) + "/p" + std::to_string(i),
                                podJson("p", i));
        if (r.ok()) revs[t].push_back(*r);
        else ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  QCOMPARE(failures.load(), 0);
  std::set<int64_t> all;
  for (const auto& v : revs) {
    QVERIFY(std::is_sorted(v.begin(), v.end()));  // each thread sees its writes in order
    all.insert(v.begin(), v.end());
  }
  QCOMPARE(all.size(), size_t{kThreads * kPerThread});
  QCOMPARE(*all.begin(), int64_t{2});
  QCOMPARE(*all.rbegin(), int64_t{1 + kThreads * kPerThread});
  RangeRequest r;
  r.key = "/registry/pods/";
  r.prefix = true;
  r.countOnly = true;
  auto count = store_->range(r);
  CHECK_OK(count);
  QCOMPARE(count->count, int64_t{kThreads * kPerThread});
}

void StoreSuite::reopenContinuesFromDisk() {
  CHECK_OK(put(*store_, "/r/a", "1"));
  CHECK_OK(put(*store_, "/r/a", "2"));
  CHECK_OK(put(*store_, "/r/b", "3"));  // 4
  CHECK_STATUS_OK(store_->compact(3));
  store_.reset();
  store_ = open();
  QVERIFY(store_);
  QCOMPARE(currentRevision(*store_), int64_t{4});
  auto kv = store_->get("/r/a");
  CHECK_OK(kv);
  QCOMPARE((*kv)->value, std::string("2"));
  QCOMPARE((*kv)->version, int64_t{2});
  auto next = put(*store_, "/r/c", "4");
  CHECK_OK(next);
  QCOMPARE(next->revision, int64_t{5});
  auto stats = store_->stats();
  CHECK_OK(stats);
  QCOMPARE(stats->compactRevision, int64_t{3});
  RangeRequest old;
  old.key = "/r/a";
  old.revision = 2;
  QCOMPARE(store_->range(old).status().code(), 410);
}

}  // namespace orrery::store::testing
