// etcd://HOST:PORT[,HOST:PORT...]/NAME and FASTEN_ETCD_ENDPOINTS (url.h):
// whatever the text, a URL or a one-line explanation, never a crash or an
// exception; a URL read has at least one endpoint, none of them empty or
// with a comma, and a name.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "etcd/url.h"

namespace {

void check_endpoints(const std::vector<std::string>& endpoints) {
  if (endpoints.empty()) {
    std::abort();
  }
  for (const auto& endpoint : endpoints) {
    if (endpoint.empty() || endpoint.find(',') != std::string::npos) {
      std::abort();
    }
  }
}

/// An explanation may quote the URL's bytes, controls included: every line
/// on stderr is escaped where it is written (diagnostics.cc).
void check_explanation(const std::string& why) {
  if (why.empty()) {
    std::abort();
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The URL, then after a NUL, if there is one, the default endpoints.
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto nul = input.find('\0');
  const auto url_text = input.substr(0, nul);
  const auto defaults = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  if (const auto url = fasten::parse_etcd_url(url_text, defaults)) {
    check_endpoints(url->endpoints);
    if (url->name.empty()) {
      std::abort();
    }
  } else {
    check_explanation(url.error().message());
  }
  // An empty list is no list (parse_etcd_url asks for one only if it is set).
  if (const auto endpoints = fasten::parse_etcd_endpoints(input); endpoints && !input.empty()) {
    check_endpoints(endpoints.value());
  } else if (!endpoints) {
    check_explanation(endpoints.error().message());
  }
  return 0;
}
