// The libcurl functions Orrery calls, loaded from libcurl.so.4 the first time one is called.
//
// Linking libcurl maps it and everything it needs (GnuTLS, Kerberos, LDAP, SSH, RTMP, ...)
// into every `orrery` process at start, and their load-time relocations and constructors
// left ~3.8 MB of an idle control plane's 28 MB resident — for code that only the etcd
// backend, remote clusters and node probes use. These definitions take the place of the
// library's: each forwards to the real function, resolved once with dlopen/dlsym.
//
// curl_easy_setopt and curl_easy_getinfo are variadic with exactly one argument after the
// option: a long, a pointer or a curl_off_t for setopt (all passed in one general-purpose
// register on the 64-bit ABIs Orrery builds for), always a pointer for getinfo. It is
// forwarded as such.

#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <dlfcn.h>

#include <cstdarg>
#include <mutex>
#include <string>

namespace {

struct Curl {
  void* library = nullptr;
  std::string error;  // why libcurl could not be loaded
  CURLcode (*global_init)(long) = nullptr;
  curl_slist* (*slist_append)(curl_slist*, const char*) = nullptr;
  void (*slist_free_all)(curl_slist*) = nullptr;
  const char* (*easy_strerror)(CURLcode) = nullptr;
  CURL* (*easy_init)() = nullptr;
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...) = nullptr;
  CURLcode (*easy_perform)(CURL*) = nullptr;
  void (*easy_cleanup)(CURL*) = nullptr;
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...) = nullptr;
  void (*easy_reset)(CURL*) = nullptr;
  CURLM* (*multi_init)() = nullptr;
  CURLMcode (*multi_add_handle)(CURLM*, CURL*) = nullptr;
  CURLMcode (*multi_remove_handle)(CURLM*, CURL*) = nullptr;
  CURLMcode (*multi_poll)(CURLM*, curl_waitfd[], unsigned int, int, int*) = nullptr;
  CURLMcode (*multi_wakeup)(CURLM*) = nullptr;
  CURLMcode (*multi_perform)(CURLM*, int*) = nullptr;
  CURLMcode (*multi_cleanup)(CURLM*) = nullptr;
  CURLMsg* (*multi_info_read)(CURLM*, int*) = nullptr;

  bool loaded() const { return library != nullptr; }
};

template <typename Fn>
bool resolve(Curl& c, Fn& fn, const char* name) {
  fn = reinterpret_cast<Fn>(dlsym(c.library, name));
  if (!fn) c.error = std::string("libcurl.so.4 has no ") + name;
  return fn != nullptr;
}

const Curl& curl() {
  static Curl c;
  static std::once_flag once;
  std::call_once(once, [] {
    c.library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!c.library) {
      const char* why = dlerror();
      c.error = std::string("cannot load libcurl.so.4 (install libcurl4): ") + (why ? why : "unknown error");
      return;
    }
    bool ok = resolve(c, c.global_init, "curl_global_init") && resolve(c, c.slist_append, "curl_slist_append") &&
              resolve(c, c.slist_free_all, "curl_slist_free_all") &&
              resolve(c, c.easy_strerror, "curl_easy_strerror") && resolve(c, c.easy_init, "curl_easy_init") &&
              resolve(c, c.easy_setopt, "curl_easy_setopt") && resolve(c, c.easy_perform, "curl_easy_perform") &&
              resolve(c, c.easy_cleanup, "curl_easy_cleanup") && resolve(c, c.easy_getinfo, "curl_easy_getinfo") &&
              resolve(c, c.easy_reset, "curl_easy_reset") && resolve(c, c.multi_init, "curl_multi_init") &&
              resolve(c, c.multi_add_handle, "curl_multi_add_handle") &&
              resolve(c, c.multi_remove_handle, "curl_multi_remove_handle") &&
              resolve(c, c.multi_poll, "curl_multi_poll") && resolve(c, c.multi_wakeup, "curl_multi_wakeup") &&
              resolve(c, c.multi_perform, "curl_multi_perform") && resolve(c, c.multi_cleanup, "curl_multi_cleanup") &&
              resolve(c, c.multi_info_read, "curl_multi_info_read");
    if (!ok) {
      dlclose(c.library);
      c.library = nullptr;
      return;
    }
    // libcurl's own global set-up, done here once and before any other call, as its manual
    // asks (it is not safe to race with other threads' first calls).
    c.global_init(CURL_GLOBAL_DEFAULT);
  });
  return c;
}

// Calls libcurl's `fn` with `args`, or answers `unloaded` when libcurl could not be loaded.
template <typename Fn, typename Unloaded, typename... Args>
auto call(Fn Curl::*fn, Unloaded unloaded, Args... args) -> decltype((curl().*fn)(args...)) {
  const Curl& c = curl();
  if (!c.loaded()) return unloaded;
  return (c.*fn)(args...);
}

// The one argument after a variadic function's last named one (see the top of the file).
#define ORRERY_CURL_ONE_ARGUMENT(last, into) \
  va_list args;                            \
  va_start(args, last);                    \
  void* into = va_arg(args, void*);        \
  va_end(args)

}  // namespace

extern "C" {

CURLcode curl_global_init(long) {
  // Done once, when the library is loaded.
  return curl().loaded() ? CURLE_OK : CURLE_FAILED_INIT;
}

curl_slist* curl_slist_append(curl_slist* list, const char* data) {
  return call(&Curl::slist_append, nullptr, list, data);
}

void curl_slist_free_all(curl_slist* list) {
  // A list only exists if the library was loaded.
  if (list) curl().slist_free_all(list);
}

const char* curl_easy_strerror(CURLcode code) { return call(&Curl::easy_strerror, curl().error.c_str(), code); }

CURL* curl_easy_init() { return call(&Curl::easy_init, nullptr); }

CURLcode curl_easy_setopt(CURL* handle, CURLoption option, ...) {
  ORRERY_CURL_ONE_ARGUMENT(option, value);
  return call(&Curl::easy_setopt, CURLE_FAILED_INIT, handle, option, value);
}

CURLcode curl_easy_perform(CURL* handle) { return call(&Curl::easy_perform, CURLE_FAILED_INIT, handle); }

void curl_easy_cleanup(CURL* handle) {
  if (handle) curl().easy_cleanup(handle);
}

CURLcode curl_easy_getinfo(CURL* handle, CURLINFO info, ...) {
  ORRERY_CURL_ONE_ARGUMENT(info, out);
  return call(&Curl::easy_getinfo, CURLE_FAILED_INIT, handle, info, out);
}

void curl_easy_reset(CURL* handle) {
  if (handle) curl().easy_reset(handle);
}

CURLM* curl_multi_init() { return call(&Curl::multi_init, nullptr); }

CURLMcode curl_multi_add_handle(CURLM* multi, CURL* handle) {
  return call(&Curl::multi_add_handle, CURLM_INTERNAL_ERROR, multi, handle);
}

CURLMcode curl_multi_remove_handle(CURLM* multi, CURL* handle) {
  return call(&Curl::multi_remove_handle, CURLM_INTERNAL_ERROR, multi, handle);
}

CURLMcode curl_multi_poll(CURLM* multi, curl_waitfd extra[], unsigned int count, int timeoutMs, int* ready) {
  return call(&Curl::multi_poll, CURLM_INTERNAL_ERROR, multi, extra, count, timeoutMs, ready);
}

CURLMcode curl_multi_wakeup(CURLM* multi) { return call(&Curl::multi_wakeup, CURLM_INTERNAL_ERROR, multi); }

CURLMcode curl_multi_perform(CURLM* multi, int* running) {
  return call(&Curl::multi_perform, CURLM_INTERNAL_ERROR, multi, running);
}

CURLMcode curl_multi_cleanup(CURLM* multi) { return call(&Curl::multi_cleanup, CURLM_INTERNAL_ERROR, multi); }

CURLMsg* curl_multi_info_read(CURLM* multi, int* queued) {
  return call(&Curl::multi_info_read, nullptr, multi, queued);
}

}  // extern "C"
