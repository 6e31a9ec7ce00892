#pragma once

#include <cstdint>

// The byte layout of fasten's reader/writer protocol, shared by every
// platform's lock file and by `status`. The protocol itself is explained at
// the top of lock-linux.cc; the manual documents it for other programs.
namespace fasten::protocol {

/// Held by a writer while it waits for k_data; readers pass through it.
inline constexpr std::int64_t k_turnstile = std::int64_t{1} << 62;
/// The lock itself: shared by readers, exclusive for a writer.
inline constexpr std::int64_t k_data = k_turnstile + 1;

} // namespace fasten::protocol
