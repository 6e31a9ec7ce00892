#pragma once

#include <chrono>
#include <string_view>

/// What the command line knows of etcd locks without linking etcd's code:
/// the form of an etcd LOCK, which fasten hands to fasten-etcd (and which
/// --fd and --ttl check), and the lease's TTL and the waiter's re-check
/// when neither --ttl nor FASTEN_ETCD_RECHECK gives one. Header
/// alone: fasten includes it and links nothing of src/etcd.
namespace fasten {

inline constexpr std::string_view k_etcd_scheme = "etcd://";

/// Whether LOCK names a lock in etcd, which the fasten-etcd program takes,
/// rather than a file. Anything else is a path, as it always was.
[[nodiscard]] inline bool is_etcd_url(std::string_view lock) noexcept {
  return lock.starts_with(k_etcd_scheme);
}

/// The lease's time to live when the command line gives none (--ttl).
inline constexpr std::chrono::seconds k_default_ttl{10};

/// How long one watch of an etcd waiter lasts at most before it looks at the
/// queue again, when FASTEN_ETCD_RECHECK gives no other time.
inline constexpr std::chrono::milliseconds k_default_etcd_recheck{2000};

} // namespace fasten
