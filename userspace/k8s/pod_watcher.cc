#include "k8s/pod_watcher.h"

#include <curl/curl.h>
#include <kspan/version.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <string_view>

#include "common/log.h"

namespace kspan::k8s {

namespace {

constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";
// A watch line is one pod object (a few KiB; a pod with many containers and long
// annotations tens of KiB): past this the line is dropped and the watch restarted.
constexpr size_t kMaxLine = 4 << 20;
constexpr size_t kMaxListBytes = 64 << 20;

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string Escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

struct Transfer {
  const std::function<bool(std::string_view)>* on_data;
  const std::atomic<bool>* stop;
  bool refused = false;  // on_data said stop
};

size_t OnData(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (!(*t->on_data)(std::string_view(data, size * nmemb))) {
    t->refused = true;
    return 0;  // aborts the transfer
  }
  return size * nmemb;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Transfer*>(user)->stop->load() ? 1 : 0;
}

}  // namespace

std::optional<PodWatcherOptions> InClusterOptions() {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  const char* node = std::getenv("K8S_NODE_NAME");
  if (!host || !*host || !node || !*node) return std::nullopt;
  PodWatcherOptions o;
  const std::string h = host;
  o.api_server = "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" +
                 (port && *port ? port : "443");
  const char* dir = std::getenv("KSPAN_K8S_SERVICEACCOUNT_DIR");
  const std::string sa = dir && *dir ? dir : kServiceAccountDir;
  o.token_file = sa + "/token";
  o.ca_file = sa + "/ca.crt";
  o.node_name = node;
  return o;
}

PodWatcher::PodWatcher(PodWatcherOptions options, metrics::Registry* metrics)
    : options_(std::move(options)),
      metrics_(metrics),
      cache_(PodCache::Options{.max_pods = options_.max_pods}) {}

PodWatcher::~PodWatcher() {
  Stop();
}

void PodWatcher::Start() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  log::Info("watching this node's pods on the Kubernetes API",
            {{"api_server", options_.api_server}, {"node", options_.node_name}});
  thread_ = std::thread([this] { Run(); });
}

void PodWatcher::Stop() {
  stop_ = true;
  {
    std::lock_guard<std::mutex> l(sleep_mu_);
    sleep_cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

std::vector<std::pair<std::string, std::string>> PodWatcher::Attributes(
    const process::ContainerIdentity& c) const {
  std::lock_guard<std::mutex> l(mu_);
  const Pod* pod = cache_.ByContainer(c.id);
  if (!pod && !c.pod_uid.empty()) pod = cache_.ByUid(c.pod_uid);
  if (!pod) return {};
  return PodAttributes(*pod, c.id);
}

std::vector<std::pair<std::string, std::string>> PodWatcher::Labels(
    const process::ContainerIdentity& c) const {
  std::lock_guard<std::mutex> l(mu_);
  const Pod* pod = cache_.ByContainer(c.id);
  if (!pod && !c.pod_uid.empty()) pod = cache_.ByUid(c.pod_uid);
  if (!pod) return {};
  return {pod->labels.begin(), pod->labels.end()};
}

size_t PodWatcher::pods() const {
  std::lock_guard<std::mutex> l(mu_);
  return cache_.size();
}

bool PodWatcher::SleepFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> l(sleep_mu_);
  sleep_cv_.wait_for(l, d, [this] { return stop_.load(); });
  return !stop_;
}

void PodWatcher::Failed(const std::string& what) {
  metrics_->GetCounter("kspan_k8s_api_requests_total", {{"result", "failed"}})->Add();
  if (down_) return;
  down_ = true;
  log::Warn("Kubernetes API unreachable: spans carry container.id and k8s.pod.uid only until it answers",
            {{"api_server", options_.api_server}, {"error", what}});
}

void PodWatcher::Recovered() {
  metrics_->GetCounter("kspan_k8s_api_requests_total", {{"result", "ok"}})->Add();
  if (!down_) return;
  down_ = false;
  log::Info("Kubernetes API answers again", {{"api_server", options_.api_server}});
}

void PodWatcher::Run() {
  std::chrono::milliseconds backoff = options_.backoff_min;
  std::string resource_version;
  bool listed = false;
  while (!stop_) {
    Outcome o = listed ? Watch(&resource_version) : List(&resource_version);
    if (o == Outcome::kStopped) return;
    if (o == Outcome::kOk) {
      listed = true;
      backoff = options_.backoff_min;
      continue;
    }
    if (o == Outcome::kGone) {
      listed = false;  // the resourceVersion expired: list again, at once
      continue;
    }
    listed = false;
    if (!SleepFor(backoff)) return;
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
}

PodWatcher::Outcome PodWatcher::List(std::string* resource_version) {
  std::vector<Pod> pods;
  std::string token;
  for (int page = 0;; ++page) {
    std::string body;
    std::string error;
    const long code = Get(
        "/api/v1/pods?limit=500&fieldSelector=" + Escape("spec.nodeName=" + options_.node_name) +
            (token.empty() ? "" : "&continue=" + Escape(token)),
        std::chrono::seconds(30),
        [&body](std::string_view d) {
          if (body.size() + d.size() > kMaxListBytes) return false;
          body.append(d);
          return true;
        },
        &error);
    if (stop_) return Outcome::kStopped;
    if (code == 410) return Outcome::kGone;  // a continue token expired
    if (code != 200) {
      Failed(code ? "HTTP " + std::to_string(code) + " listing pods: " + body.substr(0, 200) : error);
      return Outcome::kFailed;
    }
    std::optional<PodList> list = ParsePodList(body);
    if (!list) {
      Failed("an unreadable pod list (" + std::to_string(body.size()) + " bytes)");
      return Outcome::kFailed;
    }
    for (Pod& p : list->pods) pods.push_back(std::move(p));
    if (list->continue_token.empty()) {
      *resource_version = list->resource_version;
      break;
    }
    token = list->continue_token;
  }
  Recovered();
  {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Reset(std::move(pods));
    metrics_->GetCounter("kspan_k8s_pods_left_out_total")->Set(cache_.pods_left_out());
  }
  Changed();
  return Outcome::kOk;
}

PodWatcher::Outcome PodWatcher::Watch(std::string* resource_version) {
  std::string line;
  bool gone = false;
  bool bad = false;
  std::string error;
  auto on_data = [&](std::string_view d) {
    while (!d.empty()) {
      const size_t eol = d.find('\n');
      line.append(d.substr(0, eol));
      if (line.size() > kMaxLine) {
        bad = true;
        return false;
      }
      if (eol == std::string_view::npos) return true;
      d.remove_prefix(eol + 1);
      std::optional<WatchEvent> e = ParseWatchEvent(line);
      line.clear();
      if (!e) {
        metrics_->GetCounter("kspan_k8s_watch_events_unreadable_total")->Add();
        continue;
      }
      if (e->type == WatchEvent::Type::kError) {
        gone = e->error_code == 410;
        if (!gone) error = "watch error " + std::to_string(e->error_code) + ": " + e->error_message;
        return false;
      }
      if (!e->resource_version.empty()) *resource_version = e->resource_version;
      if (e->type == WatchEvent::Type::kBookmark) continue;
      {
        std::lock_guard<std::mutex> l(mu_);
        if (e->type == WatchEvent::Type::kDeleted) {
          cache_.Remove(e->pod.uid);
        } else {
          cache_.Put(std::move(e->pod));
        }
        metrics_->GetCounter("kspan_k8s_pods_left_out_total")->Set(cache_.pods_left_out());
      }
      Changed();
    }
    return true;
  };
  const long code = Get("/api/v1/pods?watch=1&allowWatchBookmarks=true&fieldSelector=" +
                            Escape("spec.nodeName=" + options_.node_name) +
                            "&resourceVersion=" + Escape(*resource_version) +
                            "&timeoutSeconds=" + std::to_string(options_.watch_timeout.count()),
                        options_.watch_timeout + std::chrono::seconds(30), on_data, &error);
  if (stop_) return Outcome::kStopped;
  if (gone || code == 410) return Outcome::kGone;
  if (code != 200 || bad || !error.empty()) {
    Failed(!error.empty() ? error
           : bad          ? "a watch line over 4 MiB"
                          : "HTTP " + std::to_string(code) + " watching pods");
    return Outcome::kFailed;
  }
  Recovered();
  return Outcome::kOk;  // the server ended the watch (timeoutSeconds): watch again
}

long PodWatcher::Get(const std::string& path_and_query, std::chrono::seconds timeout,
                     const std::function<bool(std::string_view)>& on_data, std::string* error) {
  CURL* curl = curl_easy_init();
  if (!curl) {
    *error = "curl_easy_init failed";
    return 0;
  }
  const std::string url = options_.api_server + path_and_query;
  const std::string token = ReadSmallFile(options_.token_file);
  curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  const std::string auth = "Authorization: Bearer " + token;
  if (!token.empty()) headers = curl_slist_append(headers, auth.c_str());
  Transfer t{&on_data, &stop_};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "kspan/" KSPAN_VERSION);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count() * 1000));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnData);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  const CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  // An answer cut short after its 200 (a watch the server or the timeout ended) is what
  // came: a watch starts again from its last resourceVersion, a cut list fails to parse.
  if (rc != CURLE_OK && !t.refused && code != 200) *error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  return code;
}

}  // namespace kspan::k8s
