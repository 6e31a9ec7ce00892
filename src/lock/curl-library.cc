#include "lock/curl-library.h"

#include <dlfcn.h>

#include <mutex>

namespace fasten::etcd {

namespace {

/// libcurl's ABI has been .so.4 since 2006; Debian's libcurl4-openssl-dev
/// links against the same name.
constexpr const char* k_soname = "libcurl.so.4";

template <typename Function>
bool bind(void* library, const char* name, Function& function, std::string& error) {
  function = reinterpret_cast<Function>(dlsym(library, name));
  if (function == nullptr) {
    error = std::string(k_soname) + " has no " + name;
  }
  return function != nullptr;
}

} // namespace

const CurlLibrary* curl_library(std::string& error) {
  static CurlLibrary curl{};
  static bool loaded = false;
  static std::string load_error;
  static std::once_flag once;
  std::call_once(once, [] {
    void* library = dlopen(k_soname, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      const char* why = dlerror();
      load_error = why != nullptr ? why : std::string("cannot load ") + k_soname;
      return;
    }
    loaded = bind(library, "curl_global_init", curl.global_init, load_error) &&
             bind(library, "curl_easy_init", curl.easy_init, load_error) &&
             bind(library, "curl_easy_cleanup", curl.easy_cleanup, load_error) &&
             bind(library, "curl_easy_reset", curl.easy_reset, load_error) &&
             bind(library, "curl_easy_setopt", curl.easy_setopt, load_error) &&
             bind(library, "curl_easy_perform", curl.easy_perform, load_error) &&
             bind(library, "curl_easy_getinfo", curl.easy_getinfo, load_error) &&
             bind(library, "curl_easy_strerror", curl.easy_strerror, load_error) &&
             bind(library, "curl_slist_append", curl.slist_append, load_error) &&
             bind(library, "curl_slist_free_all", curl.slist_free_all, load_error);
    // libcurl wants its global state set up once, before any handle exists;
    // this runs on the first Client's thread, before the lease thread.
    if (loaded && curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      load_error = "curl_global_init failed";
      loaded = false;
    }
  });
  if (!loaded) {
    error = load_error;
    return nullptr;
  }
  return &curl;
}

} // namespace fasten::etcd
