// The CronJob controller, as pkg/controller/cronjob (ControllerV2) in kube-controller-manager 1.32.

#include "engine/controllers/cronjob.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/cron_schedule.h"
#include "engine/api/object.h"
#include "engine/api/time_zone.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {

using nlohmann::json;
using Clock = std::chrono::system_clock;

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

  void requeueAtNext(const std::string& key, const api::cron::Schedule& schedule, const api::TimeZone& zone,
                     Clock::time_point now) {
    auto next = schedule.next(now, zone);
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

    // ---- the schedule, and the zone it reads in (kube's formatSchedule): spec.timeZone, else
    // the controller's own zone (time.Local). A TZ= or CRON_TZ= prefix in the schedule wins
    // over both, with a warning: the API refuses it on new CronJobs, older ones may have it.
    api::TimeZonePtr zone;
    const json& timeZone = field(spec, "timeZone");
    if (timeZone.is_string()) {
      auto loaded = api::TimeZone::load(timeZone.get<std::string>());
      if (!loaded.ok()) {
        record(cj, "Warning", "UnknownTimeZone",
               "invalid timeZone: \"" + timeZone.get<std::string>() + "\": " + loaded.status().message());
        return writeStatus();
      }
      zone = *loaded;
    } else {
      auto local = api::TimeZone::load("Local");
      zone = local.ok() ? *local : api::TimeZone::utc();
    }
    std::string scheduleText = str(field(spec, "schedule"));
    if (scheduleText.find("TZ") != std::string::npos)
      record(cj, "Warning", "UnsupportedSchedule",
             "CRON_TZ or TZ used in schedule \"" + scheduleText +
                 "\" is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details");
    auto schedule = api::cron::parseSchedule(scheduleText);
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
    for (auto t = schedule->next(earliest, *zone); t && *t <= now; t = schedule->next(*t, *zone)) {
      scheduled = *t;
      if (++missed > 1000000) break;
    }
    if (missed > 100)
      record(cj, "Warning", "TooManyMissedTimes",
             "too many missed start times: " + std::to_string(missed) +
                 ". Set or decrease .spec.startingDeadlineSeconds or check clock skew");
    if (!scheduled) {
      requeueAtNext(key, *schedule, *zone, now);
      return writeStatus();
    }
    if (sds.is_number_integer() && *scheduled + std::chrono::seconds(sds.get<int64_t>()) < now) {
      record(cj, "Warning", "MissSchedule", "Missed scheduled time to start a job: " + formatRfc1123z(*scheduled));
      requeueAtNext(key, *schedule, *zone, now);
      return writeStatus();
    }
    int64_t minutes = std::chrono::duration_cast<std::chrono::minutes>(scheduled->time_since_epoch()).count();
    std::string jobName = cjName + "-" + std::to_string(minutes);
    bool alreadyProcessed = !lastSchedule.is_null() && timeField(lastSchedule) == *scheduled;
    for (const auto& a : active) alreadyProcessed = alreadyProcessed || a.value("name", "") == jobName;
    if (alreadyProcessed) {
      requeueAtNext(key, *schedule, *zone, now);
      return writeStatus();
    }
    std::string policy = str(field(spec, "concurrencyPolicy"));
    if (policy == "Forbid" && !active.empty()) {
      record(cj, "Normal", "JobAlreadyActive",
             "Not starting job because prior execution is running and concurrency policy is Forbid");
      requeueAtNext(key, *schedule, *zone, now);
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
    annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"] = zone->rfc3339(std::chrono::floor<std::chrono::seconds>(*scheduled).time_since_epoch().count());
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
    requeueAtNext(key, *schedule, *zone, now);
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
