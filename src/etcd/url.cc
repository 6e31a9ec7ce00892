#include "etcd/url.h"

#include <charconv>

namespace fasten {

namespace {

constexpr std::string_view k_default_port = "2379";

struct Endpoint {
  std::string text;
};

/// A URL or endpoint fasten cannot use: ErrorKind::open, as for a lock file
/// that cannot be opened; the command line makes it a usage error.
Error bad(std::string what, std::string given, std::string why) {
  return Error(ErrorKind::open, std::move(what), std::move(given), std::move(why));
}

Error bad_endpoint(std::string given, std::string why) {
  return bad("bad etcd endpoint", std::move(given), std::move(why));
}

constexpr std::string_view k_http = "http://";
constexpr std::string_view k_https = "https://";

/// "host:port", "host", "[::1]:port", or the same after "http://" or
/// "https://", checked and with the port filled in; "https://" stays.
Result<Endpoint> parse_endpoint(std::string_view text) {
  const std::string given(text);
  std::string scheme;
  if (text.starts_with(k_https)) {
    scheme = k_https;
    text.remove_prefix(k_https.size());
  } else if (text.starts_with(k_http)) {
    text.remove_prefix(k_http.size());
  }
  while (text.ends_with('/')) {
    text.remove_suffix(1);
  }
  std::string_view host = text;
  std::string_view port = k_default_port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      return bad_endpoint(given, "no ']' after an IPv6 address");
    }
    host = text.substr(0, close + 1);
    const auto after = text.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) {
        return bad_endpoint(given, "expected [ADDRESS]:PORT");
      }
      port = after.substr(1);
    }
  } else if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned number = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (host.empty() || host.find_first_of("/@?# ") != std::string_view::npos) {
    return bad_endpoint(given, "expected HOST:PORT");
  }
  if (port.empty() || error != std::errc() || end != port.data() + port.size() || number == 0 ||
      number > 65535) {
    return bad_endpoint(given, "the port must be a number from 1 to 65535");
  }
  return Endpoint{scheme + std::string(host) + ":" + std::string(port)};
}

/// Where the hosts of `url` (what follows "etcd://") end: the first '/'
/// that is not in an endpoint's "http://" or "https://".
std::size_t end_of_hosts(std::string_view url) {
  std::size_t at = 0;
  while (true) {
    for (const auto scheme : {k_http, k_https}) {
      if (url.substr(at).starts_with(scheme)) {
        at += scheme.size();
      }
    }
    const auto stop = url.find_first_of(",/", at);
    if (stop == std::string_view::npos || url[stop] == '/') {
      return stop;
    }
    at = stop + 1;
  }
}

} // namespace

Result<std::vector<std::string>> parse_etcd_endpoints(std::string_view list) {
  const std::string given(list);
  std::vector<std::string> endpoints;
  while (!list.empty()) {
    const auto comma = list.find(',');
    const auto item = list.substr(0, comma);
    auto endpoint = FASTEN_TRY(parse_endpoint(item));
    endpoints.push_back(std::move(endpoint.text));
    if (comma == std::string_view::npos) {
      break;
    }
    list.remove_prefix(comma + 1);
    if (list.empty()) {
      return bad("bad etcd endpoint list", given, "it ends with a comma");
    }
  }
  return endpoints;
}

Result<EtcdUrl> parse_etcd_url(std::string_view url, std::string_view default_endpoints) {
  const std::string given(url);
  if (!is_etcd_url(url)) {
    return Error(ErrorKind::misuse, "not an etcd URL", given);
  }
  url.remove_prefix(k_etcd_scheme.size());
  const auto slash = end_of_hosts(url);
  if (slash == std::string_view::npos || slash + 1 == url.size()) {
    return bad("bad etcd lock", given, "no NAME (expected etcd://HOST:PORT/NAME)");
  }
  EtcdUrl parsed;
  parsed.name = url.substr(slash + 1);
  if (parsed.name.ends_with('/')) {
    // NAME/ is the prefix of the lock's keys: a name ending in '/' would
    // share keys with another lock.
    return bad("bad etcd lock", given, "NAME must not end with '/'");
  }
  if (parsed.name.find(k_etcd_marks_suffix) != std::string::npos) {
    // NAME~fasten-marks/ holds the marks of lock NAME's keys: a
    // name with it in would share keys with another lock's marks.
    return bad("bad etcd lock", given, "NAME must not contain '" + std::string(k_etcd_marks_suffix) + "'");
  }
  const auto hosts = url.substr(0, slash);
  if (hosts.empty()) {
    if (default_endpoints.empty()) {
      return bad("bad etcd lock", given, "it names no endpoints, and FASTEN_ETCD_ENDPOINTS is not set");
    }
    auto endpoints = parse_etcd_endpoints(default_endpoints);
    if (!endpoints) {
      const Error& error = endpoints.error();
      return bad("FASTEN_ETCD_ENDPOINTS: " + error.what(), error.subject(), error.detail());
    }
    parsed.endpoints = std::move(endpoints).value();
  } else {
    parsed.endpoints = FASTEN_TRY(parse_etcd_endpoints(hosts));
  }
  return parsed;
}

} // namespace fasten
