#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "etcd/syntax.h"
#include "lock/backend.h"
#include "lock/result.h"

namespace fasten {

/// A lock named `etcd://HOST:PORT[,HOST:PORT...]/NAME`: the etcd members to
/// ask, in the order to try them, and the lock's name, the prefix of its keys.
/// An endpoint may start with `http://` or, for TLS, `https://`
/// (`etcd://https://a:2379,https://b:2379/NAME`).
struct EtcdUrl {
  /// "host:port", "[v6]:port", or "https://host:port" for TLS; a missing port
  /// is etcd's client port, 2379.
  std::vector<std::string> endpoints;
  std::string name;
};

/// What follows NAME in the prefix of the marks of lock NAME's keys
/// (NAME~fasten-marks/, src/etcd/queue.h): no NAME may hold it.
inline constexpr std::string_view k_etcd_marks_suffix = "~fasten-marks";

/// Reads an etcd:// URL. Without hosts in it (`etcd:///NAME`), the endpoints
/// come from `default_endpoints`, a comma-separated list in the form of
/// FASTEN_ETCD_ENDPOINTS (`host:port`, `http://host:port` or
/// `https://host:port`). Errors say what is wrong with which part
/// (ErrorKind::open; ErrorKind::misuse for a URL that is not etcd://).
[[nodiscard]] Result<EtcdUrl> parse_etcd_url(std::string_view url, std::string_view default_endpoints = {});

/// Reads a comma-separated list of endpoints, `host:port`, `http://host:port`
/// or `https://host:port` each.
[[nodiscard]] Result<std::vector<std::string>> parse_etcd_endpoints(std::string_view list);

} // namespace fasten
