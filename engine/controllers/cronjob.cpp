// The CronJob controller, as pkg/controller/cronjob (ControllerV2) in kube-controller-manager 1.32.

#include "engine/controllers/cronjob.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/object.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {

using nlohmann::json;
using Clock = std::chrono::system_clock;

namespace cronjob {

namespace {

struct Bounds {
  int min, max;
  const char* const* names;  // lower-case, indexed from min
};
const char* const kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
const char* const kDowNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"};  // 7 is Sunday too

api::Result<int> parseValue(const std::string& s, const Bounds& b) {
  if (b.names) {
    std::string lower;
    for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (int i = 0; i <= b.max - b.min; ++i)
      if (lower == b.names[i]) return b.min + i;
  }
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 6)
    return Status::badRequest("failed to parse int from " + s + ": strconv.Atoi: parsing \"" + s + "\": invalid syntax");
  return std::stoi(s);
}

// One comma-separated part: "*", "?", "a", "a-b", with an optional "/step".
Status parseRange(const std::string& expr, const Bounds& b, uint64_t* bits, bool* star) {
  std::string rangePart = expr, stepPart;
  if (auto slash = expr.find('/'); slash != std::string::npos) {
    rangePart = expr.substr(0, slash);
    stepPart = expr.substr(slash + 1);
  }
  int start, end, step = 1;
  bool isStar = rangePart == "*" || rangePart == "?";
  if (isStar) {
    start = b.min;
    end = b.max;
  } else {
    auto dash = rangePart.find('-');
    auto lo = parseValue(rangePart.substr(0, dash), b);
    if (!lo.ok()) return lo.status();
    start = end = *lo;
    if (dash != std::string::npos) {
      auto hi = parseValue(rangePart.substr(dash + 1), b);
      if (!hi.ok()) return hi.status();
      end = *hi;
    }
  }
  if (!stepPart.empty() || expr.find('/') != std::string::npos) {
    auto st = parseValue(stepPart, {0, 0, nullptr});
    if (!st.ok()) return st.status();
    step = *st;
    if (rangePart.find('-') == std::string::npos && !isStar) end = b.max;  // "N/step" is "N-max/step"
  }
  if (start < b.min) return Status::badRequest("beginning of range (" + std::to_string(start) + ") below minimum (" + std::to_string(b.min) + "): " + expr);
  if (end > b.max) return Status::badRequest("end of range (" + std::to_string(end) + ") above maximum (" + std::to_string(b.max) + "): " + expr);
  if (start > end) return Status::badRequest("beginning of range (" + std::to_string(start) + ") beyond end of range (" + std::to_string(end) + "): " + expr);
  if (step == 0) return Status::badRequest("step of range should be a positive number: " + expr);
  for (int v = start; v <= end; v += step) *bits |= uint64_t{1} << v;
  if (isStar && step == 1) *star = true;
  return {};
}

Status parseField(const std::string& field, const Bounds& b, uint64_t* bits, bool* star) {
  size_t i = 0;
  while (i <= field.size()) {
    size_t comma = field.find(',', i);
    std::string part = field.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    Status s = parseRange(part, b, bits, star);
    if (!s.isOk()) return s;
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  return {};
}

}  // namespace

api::Result<Schedule> parseSchedule(const std::string& specIn) {
  std::string spec = specIn;
  if (spec.rfind("TZ=", 0) == 0 || spec.rfind("CRON_TZ=", 0) == 0) {
    auto sp = spec.find(' ');
    spec = sp == std::string::npos ? "" : spec.substr(sp + 1);
  }
  std::vector<std::string> fields;
  for (size_t i = 0; i < spec.size();) {
    while (i < spec.size() && std::isspace(static_cast<unsigned char>(spec[i]))) ++i;
    size_t j = i;
    while (j < spec.size() && !std::isspace(static_cast<unsigned char>(spec[j]))) ++j;
    if (j > i) fields.push_back(spec.substr(i, j - i));
    i = j;
  }
  if (fields.empty()) return Status::badRequest("empty spec string");
  if (fields[0][0] == '@') {
    static const std::map<std::string, std::string> descriptors = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}};
    auto it = descriptors.find(fields[0]);
    // TODO(ctrlbatch): "@every <duration>" (robfig accepts it; kube rarely sees it).
    if (it == descriptors.end()) return Status::badRequest("unrecognized descriptor: " + fields[0]);
    return parseSchedule(it->second);
  }
  if (fields.size() != 5)
    return Status::badRequest("expected exactly 5 fields, found " + std::to_string(fields.size()) + ": " + spec);
  Schedule s;
  bool ignored = false;
  Status st;
  if (!(st = parseField(fields[0], {0, 59, nullptr}, &s.minuteBits, &ignored)).isOk()) return st;
  if (!(st = parseField(fields[1], {0, 23, nullptr}, &s.hourBits, &ignored)).isOk()) return st;
  if (!(st = parseField(fields[2], {1, 31, nullptr}, &s.domBits, &s.domStar)).isOk()) return st;
  if (!(st = parseField(fields[3], {1, 12, kMonthNames}, &s.monthBits, &ignored)).isOk()) return st;
  if (!(st = parseField(fields[4], {0, 7, kDowNames}, &s.dowBits, &s.dowStar)).isOk()) return st;
  if (s.dowBits & (uint64_t{1} << 7)) s.dowBits = (s.dowBits | 1) & ~(uint64_t{1} << 7);  // 7 is Sunday too
  return s;
}

std::optional<Clock::time_point> Schedule::next(Clock::time_point after, std::chrono::seconds utcOffset) const {
  using namespace std::chrono;
  auto local = floor<minutes>(time_point_cast<seconds>(after) + utcOffset) + minutes(1);
  auto limit = local + years(5);
  auto bit = [](uint64_t set, unsigned v) { return (set >> v) & 1; };
  while (local < limit) {
    sys_days day = floor<days>(local);
    year_month_day ymd{day};
    if (!bit(monthBits, static_cast<unsigned>(ymd.month()))) {
      local = sys_days((ymd.year() / ymd.month() + std::chrono::months(1)) / std::chrono::day(1));
      continue;
    }
    bool domMatch = bit(domBits, static_cast<unsigned>(ymd.day()));
    bool dowMatch = bit(dowBits, weekday(day).c_encoding());
    bool dayMatch = (domStar || dowStar) ? (domMatch && dowMatch) : (domMatch || dowMatch);
    if (!dayMatch) {
      local = day + days(1);
      continue;
    }
    auto h = duration_cast<hours>(local - day).count();
    if (!bit(hourBits, static_cast<unsigned>(h))) {
      local = day + hours(h + 1);
      continue;
    }
    auto m = duration_cast<minutes>(local - day - hours(h)).count();
    if (!bit(minuteBits, static_cast<unsigned>(m))) {
      local += minutes(1);
      continue;
    }
    return Clock::time_point(local - utcOffset);
  }
  return std::nullopt;
}

api::Result<std::chrono::seconds> zoneOffset(const std::string& tz, Clock::time_point at) {
  using std::chrono::hours;
  if (tz.empty() || tz == "Local") {
    // The controller's own zone, as kube's time.Local (its offset now: DST shifts are not
    // followed across a schedule).
    std::time_t t = Clock::to_time_t(at);
    std::tm tm{};
    localtime_r(&t, &tm);
    return std::chrono::seconds(tm.tm_gmtoff);
  }
  if (tz == "UTC" || tz == "Etc/UTC" || tz == "GMT" || tz == "Etc/GMT" || tz == "Etc/Universal" ||
      tz == "Etc/Zulu" || tz == "Universal" || tz == "Zulu" || tz == "Etc/GMT0" || tz == "Etc/GMT+0" || tz == "Etc/GMT-0")
    return std::chrono::seconds(0);
  if (tz.rfind("Etc/GMT", 0) == 0 && tz.size() > 8 && (tz[7] == '+' || tz[7] == '-')) {
    std::string n = tz.substr(8);
    if (!n.empty() && n.size() <= 2 && n.find_first_not_of("0123456789") == std::string::npos) {
      int h = std::stoi(n);
      if (h <= 14) return std::chrono::duration_cast<std::chrono::seconds>(hours(tz[7] == '+' ? -h : h));
    }
  }
  // TODO(ctrlbatch): read /usr/share/zoneinfo (TZif) for named zones with DST.
  return Status::badRequest("unknown time zone " + tz);
}

}  // namespace cronjob

namespace {

const api::GroupVersionResource kJobs{"batch", "v1", "jobs"};
const api::GroupVersionResource kCronJobs{"batch", "v1", "cronjobs"};

std::string str(const json& v) { return v.is_string() ? v.get<std::string>() : std::string(); }


// "Complete" or "Failed" when the Job has finished, else "".
std::string finishedCondition(const json& job) {
  const json& conds = field(job, "status", "conditions");
  if (conds.is_array())
    for (const auto& c : conds)
      if ((c.value("type", "") == "Complete" || c.value("type", "") == "Failed") && c.value("status", "") == "True")
        return c.value("type", "");
  return "";
}

// RFC 3339 in a fixed zone, as Go's time.Format(time.RFC3339).
std::string formatInZone(Clock::time_point t, std::chrono::seconds offset) {
  using namespace std::chrono;
  auto local = floor<seconds>(t) + offset;
  std::time_t tt = Clock::to_time_t(Clock::time_point(local));
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (offset.count() == 0) return out + "Z";
  long off = static_cast<long>(offset.count());
  char sign = off < 0 ? '-' : '+';
  off = std::labs(off);
  char z[48];
  std::snprintf(z, sizeof z, "%c%02ld:%02ld", sign, off / 3600, (off % 3600) / 60);
  return out + z;
}

// Go's time.RFC1123Z, in UTC, for the MissSchedule event.
std::string formatRfc1123z(Clock::time_point t) {
  std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

class CronJobController : public Controller {
 public:
  std::string name() const override { return "cronjob"; }
  int workers() const override { return 5; }  // --concurrent-cron-job-syncs
  // The clock is injected and may jump: every CronJob is looked at each second, besides the
  // requeue at its next scheduled time.
  std::chrono::milliseconds tickInterval() const override { return std::chrono::milliseconds(500); }

  Status setup(ControllerContext& context) override {
    context_ = &context;
    client_ = context.client;
    cronJobs_ = &context.informers->informer(kCronJobs);
    jobs_ = &context.informers->informer(kJobs);
    auto enqueue = [this](const client::ObjectPtr& cj) { queue().add(client::objectKey(*cj)); };
    cronJobs_->addHandler({enqueue, [enqueue](const client::ObjectPtr&, const client::ObjectPtr& cj) { enqueue(cj); },
                           nullptr});
    auto jobChanged = [this](const client::ObjectPtr& j) {
      auto ref = controllerRef(*j);
      if (ref && ref->kind == "CronJob") queue().add(client::objectKey(strField(*j, "metadata", "namespace"), ref->name));
    };
    jobs_->addHandler({jobChanged, [jobChanged](const client::ObjectPtr&, const client::ObjectPtr& j) { jobChanged(j); },
                       jobChanged});
    return {};
  }

  void tick() override {
    for (const auto& cj : cronJobs_->list()) queue().add(client::objectKey(*cj));
  }

  Status sync(const std::string& key) override {
    return syncCronJob(key);
  }

 private:
  void record(const json& obj, const char* type, const char* reason, const std::string& message) {
    if (events) events->record(obj, type, reason, message);
  }

  static json jobReference(const json& job) {
    return {{"kind", "Job"},
            {"namespace", strField(job, "metadata", "namespace")},
            {"name", strField(job, "metadata", "name")},
            {"uid", strField(job, "metadata", "uid")},
            {"apiVersion", "batch/v1"},
            {"resourceVersion", strField(job, "metadata", "resourceVersion")}};
  }

  void requeueAtNext(const std::string& key, const cronjob::Schedule& schedule, std::chrono::seconds offset,
                     Clock::time_point now) {
    auto next = schedule.next(now, offset);
    if (!next) return;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(*next - now) + std::chrono::milliseconds(100);
    queue().addAfter(key, wait);
  }

  // Deletes a Job as kube's deleteJob does (background propagation), with its event.
  bool deleteJob(const json& cj, const std::string& ns, const std::string& name) {
    client::DeleteOptions opts;
    opts.propagationPolicy = "Background";
    auto r = client_->remove(kJobs, ns, name, opts);
    if (!r.ok() && r.status().code() != 404) {
      record(cj, "Warning", "FailedDelete", "Deleted job: " + r.status().message());
      return false;
    }
    record(cj, "Normal", "SuccessfulDelete", "Deleted job " + name);
    return true;
  }

  Status syncCronJob(const std::string& key) {
    auto cached = cronJobs_->get(key);
    if (!cached) return {};
    const json& cj = *cached;
    const std::string ns = strField(cj, "metadata", "namespace");
    const std::string cjName = strField(cj, "metadata", "name");
    const std::string uid = strField(cj, "metadata", "uid");
    const json& spec = field(cj, "spec");
    const Clock::time_point now = context_->now();

    std::vector<client::ObjectPtr> jobs;
    for (const auto& j : jobs_->byIndex("namespace", ns)) {
      auto ref = controllerRef(*j);
      if (ref && ref->uid == uid) jobs.push_back(j);
    }

    json active = field(cj, "status", "active").is_array() ? field(cj, "status", "active") : json::array();
    json lastSuccessful = field(cj, "status", "lastSuccessfulTime");
    json lastSchedule = field(cj, "status", "lastScheduleTime");
    auto inActive = [&](const std::string& jobUid) {
      for (const auto& a : active)
        if (a.value("uid", "") == jobUid) return true;
      return false;
    };
    auto dropActive = [&](const std::string& jobUid) {
      json kept = json::array();
      for (const auto& a : active)
        if (a.value("uid", "") != jobUid) kept.push_back(a);
      active = std::move(kept);
    };

    // ---- reconcile status.active with the Jobs that exist
    std::set<std::string> children;
    for (const auto& j : jobs) {
      std::string jobUid = strField(*j, "metadata", "uid");
      children.insert(jobUid);
      std::string finished = finishedCondition(*j);
      bool found = inActive(jobUid);
      if (!found && finished.empty()) {
        record(cj, "Warning", "UnexpectedJob",
               "Saw a job that the controller did not create or forgot: " + strField(*j, "metadata", "name"));
      } else if (found && !finished.empty()) {
        dropActive(jobUid);
        record(cj, "Normal", "SawCompletedJob",
               "Saw completed job: " + strField(*j, "metadata", "name") + ", condition: " + finished);
      }
      if (finished == "Complete") {
        const json& completion = field(*j, "status", "completionTime");
        if (completion.is_string() && (lastSuccessful.is_null() || timeField(completion) > timeField(lastSuccessful)))
          lastSuccessful = completion;
      }
    }
    for (const auto& a : json(active)) {
      std::string jobUid = a.value("uid", "");
      if (children.count(jobUid)) continue;
      // Maybe just created and not in the cache yet: ask the server.
      auto live = client_->get(kJobs, ns, a.value("name", ""));
      if (!live.ok() && live.status().code() == 404) {
        record(cj, "Normal", "MissingJob", "Active job went missing: " + a.value("name", ""));
        dropActive(jobUid);
      } else if (live.ok() && strField(*live, "metadata", "uid") != jobUid) {
        dropActive(jobUid);
      }
    }

    // ---- history limits (cleanupFinishedJobs): oldest by start time go first
    if (!isBeingDeleted(cj)) {
      std::vector<client::ObjectPtr> succeeded, failed;
      for (const auto& j : jobs) {
        std::string f = finishedCondition(*j);
        if (f == "Complete") succeeded.push_back(j);
        else if (f == "Failed") failed.push_back(j);
      }
      auto prune = [&](std::vector<client::ObjectPtr>& list, const json& limitField) {
        if (!limitField.is_number_integer()) return;
        int64_t limit = limitField.get<int64_t>();
        if (static_cast<int64_t>(list.size()) <= limit) return;
        std::sort(list.begin(), list.end(), [](const client::ObjectPtr& a, const client::ObjectPtr& b) {
          const json& sa = field(*a, "status", "startTime");
          const json& sb = field(*b, "status", "startTime");
          if (sa.is_null() != sb.is_null()) return sb.is_null();
          if (!sa.is_null() && timeField(sa) != timeField(sb)) return timeField(sa) < timeField(sb);
          return strField(*a, "metadata", "name") < strField(*b, "metadata", "name");
        });
        for (size_t i = 0; i + limit < list.size(); ++i)
          deleteJob(cj, ns, strField(*list[i], "metadata", "name"));
      };
      prune(succeeded, field(spec, "successfulJobsHistoryLimit"));
      prune(failed, field(spec, "failedJobsHistoryLimit"));
    }

    auto writeStatus = [&]() -> Status {
      json st = field(cj, "status").is_object() ? field(cj, "status") : json::object();
      json want = st;
      if (active.empty()) want.erase("active");
      else want["active"] = active;
      if (!lastSchedule.is_null()) want["lastScheduleTime"] = lastSchedule;
      if (!lastSuccessful.is_null()) want["lastSuccessfulTime"] = lastSuccessful;
      if (want == st) return {};
      json obj = cj;
      obj["status"] = want;
      auto r = client_->update(kCronJobs, ns, obj, "status");
      if (!r.ok() && isConflict(r.status())) return requeue("cronjob status changed meanwhile");
      if (!r.ok() && r.status().code() != 404) return r.status();
      return {};
    };

    if (isBeingDeleted(cj) || field(spec, "suspend") == true) return writeStatus();

    // ---- the schedule
    std::string tz = str(field(spec, "timeZone"));
    std::string scheduleText = str(field(spec, "schedule"));
    auto offset = cronjob::zoneOffset(tz, now);
    if (!offset.ok()) {
      record(cj, "Warning", "UnknownTimeZone", "invalid timeZone: \"" + tz + "\": " + offset.status().message());
      return writeStatus();
    }
    auto schedule = cronjob::parseSchedule(scheduleText);
    if (!schedule.ok()) {
      record(cj, "Warning", "UnparseableSchedule",
             "unparseable schedule: \"" + scheduleText + "\" : " + schedule.status().message());
      return writeStatus();
    }

    // mostRecentScheduleTime: the latest activation in (earliest, now].
    Clock::time_point earliest = lastSchedule.is_null() ? timeField(field(cj, "metadata", "creationTimestamp"))
                                                        : timeField(lastSchedule);
    const json& sds = field(spec, "startingDeadlineSeconds");
    if (sds.is_number_integer()) earliest = std::max(earliest, now - std::chrono::seconds(sds.get<int64_t>()));
    std::optional<Clock::time_point> scheduled;
    int64_t missed = 0;
    for (auto t = schedule->next(earliest, *offset); t && *t <= now; t = schedule->next(*t, *offset)) {
      scheduled = *t;
      if (++missed > 1000000) break;
    }
    if (missed > 100)
      record(cj, "Warning", "TooManyMissedTimes",
             "too many missed start times: " + std::to_string(missed) +
                 ". Set or decrease .spec.startingDeadlineSeconds or check clock skew");
    if (!scheduled) {
      requeueAtNext(key, *schedule, *offset, now);
      return writeStatus();
    }
    if (sds.is_number_integer() && *scheduled + std::chrono::seconds(sds.get<int64_t>()) < now) {
      record(cj, "Warning", "MissSchedule", "Missed scheduled time to start a job: " + formatRfc1123z(*scheduled));
      requeueAtNext(key, *schedule, *offset, now);
      return writeStatus();
    }
    int64_t minutes = std::chrono::duration_cast<std::chrono::minutes>(scheduled->time_since_epoch()).count();
    std::string jobName = cjName + "-" + std::to_string(minutes);
    bool alreadyProcessed = !lastSchedule.is_null() && timeField(lastSchedule) == *scheduled;
    for (const auto& a : active) alreadyProcessed = alreadyProcessed || a.value("name", "") == jobName;
    if (alreadyProcessed) {
      requeueAtNext(key, *schedule, *offset, now);
      return writeStatus();
    }
    std::string policy = str(field(spec, "concurrencyPolicy"));
    if (policy == "Forbid" && !active.empty()) {
      record(cj, "Normal", "JobAlreadyActive",
             "Not starting job because prior execution is running and concurrency policy is Forbid");
      requeueAtNext(key, *schedule, *offset, now);
      return writeStatus();
    }
    if (policy == "Replace") {
      for (const auto& a : json(active))
        if (deleteJob(cj, ns, a.value("name", ""))) dropActive(a.value("uid", ""));
    }

    // ---- create the Job (getJobFromTemplate2)
    const json& tmpl = field(spec, "jobTemplate");
    json meta = {{"name", jobName}, {"namespace", ns}};
    if (field(field(tmpl, "metadata"), "labels").is_object()) meta["labels"] = field(field(tmpl, "metadata"), "labels");
    json annotations = field(field(tmpl, "metadata"), "annotations").is_object()
                           ? field(field(tmpl, "metadata"), "annotations") : json::object();
    annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"] = formatInZone(*scheduled, *offset);
    meta["annotations"] = annotations;
    meta["ownerReferences"] = json::array({newControllerRef(cj)});
    json job = {{"apiVersion", "batch/v1"}, {"kind", "Job"}, {"metadata", meta},
                {"spec", field(tmpl, "spec").is_object() ? field(tmpl, "spec") : json::object()}};
    auto created = client_->create(kJobs, ns, job);
    if (!created.ok()) {
      if (created.status().code() != 409) {
        record(cj, "Warning", "FailedCreate", "Error creating job: " + created.status().message());
        (void)writeStatus();
        return created.status();
      }
      // Created by an earlier sync whose status write did not land: take it as ours.
      auto existing = client_->get(kJobs, ns, jobName);
      if (existing.ok()) {
        auto ref = controllerRef(*existing);
        if (ref && ref->uid == uid && finishedCondition(*existing).empty() &&
            !inActive(strField(*existing, "metadata", "uid")))
          active.push_back(jobReference(*existing));
      }
    } else {
      record(cj, "Normal", "SuccessfulCreate", "Created job " + jobName);
      active.push_back(jobReference(*created));
    }
    lastSchedule = api::formatTime(*scheduled);
    requeueAtNext(key, *schedule, *offset, now);
    return writeStatus();
  }

  ControllerContext* context_ = nullptr;
  std::shared_ptr<client::Client> client_;
  client::Informer* cronJobs_ = nullptr;
  client::Informer* jobs_ = nullptr;
};

}  // namespace

std::unique_ptr<Controller> newCronJobController() { return std::make_unique<CronJobController>(); }

}  // namespace orrery::controllers
