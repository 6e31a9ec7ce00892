#pragma once

#include <curl/curl.h>

#include <string>

namespace fasten::etcd {

/// libcurl's functions, loaded with dlopen the first time an etcd lock needs
/// them. libfasten does not link libcurl: loading it, and the thirty-odd
/// libraries it pulls in, would cost every run of fasten several milliseconds
/// of dynamic linking and megabytes of memory, file locks included.
struct CurlLibrary {
  decltype(&::curl_global_init) global_init;
  decltype(&::curl_easy_init) easy_init;
  decltype(&::curl_easy_cleanup) easy_cleanup;
  decltype(&::curl_easy_reset) easy_reset;
  decltype(&::curl_easy_setopt) easy_setopt;
  decltype(&::curl_easy_perform) easy_perform;
  decltype(&::curl_easy_getinfo) easy_getinfo;
  decltype(&::curl_easy_strerror) easy_strerror;
  decltype(&::curl_slist_append) slist_append;
  decltype(&::curl_slist_free_all) slist_free_all;
};

/// The library, loaded and initialised once (curl_global_init) on first use;
/// nullptr when it cannot be loaded, and then `error` says why.
[[nodiscard]] const CurlLibrary* curl_library(std::string& error);

} // namespace fasten::etcd
