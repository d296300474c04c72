#include "engine/cluster/probe.h"

#include <curl/curl.h>

#include <memory>

#include <nlohmann/json.hpp>

#include "engine/cluster/layout.h"

namespace orrery::cluster {

using api::Result;
using api::Status;

namespace {

size_t collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

}  // namespace

Result<HttpReply> httpsGet(const std::string& url, const PkiPaths& pki,
                           std::chrono::milliseconds timeout) {
  std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
  if (!curl) return Status::internal("cannot initialise libcurl");
  HttpReply reply;
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CAINFO, pki.caCert().c_str());
  curl_easy_setopt(c, CURLOPT_SSLCERT, pki.adminCert().c_str());
  curl_easy_setopt(c, CURLOPT_SSLKEY, pki.adminKey().c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");  // loopback only, whatever https_proxy says
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return Status::serviceUnavailable("GET " + url + " failed: " +
                                      (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply.code);
  return reply;
}

std::optional<int64_t> readStoreRevision(uint16_t port, const PkiPaths& pki) {
  auto reply = httpsGet(apiUrl(port) + "/api/v1/namespaces?limit=1", pki);
  if (!reply.ok() || reply->code != 200) return std::nullopt;
  try {
    auto j = nlohmann::json::parse(reply->body);
    std::string rv = j.at("metadata").value("resourceVersion", "");
    if (rv.empty()) return std::nullopt;
    return std::stoll(rv);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool apiReady(uint16_t port, const PkiPaths& pki) {
  auto reply = httpsGet(apiUrl(port) + "/readyz", pki);
  return reply.ok() && reply->code == 200;
}

}  // namespace orrery::cluster
