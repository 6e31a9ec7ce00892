#pragma once

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <optional>

#include "lock/deadline.h"
#include "lock/lock.h"

namespace fasten {

/// How other holders hold a byte, as a probe sees it.
enum class Seen {
  free,
  shared,
  exclusive,
  /// The platform cannot look without taking the lock (Windows).
  unknown,
};

/// The platform's seam under the lock protocol: locks on single bytes of an
/// open file, and nothing about what the bytes mean. The reader/writer and
/// slot protocol (protocol.cc) is written once over it; each platform's file
/// implements it (lock-linux.cc: fcntl; lock-win32.cc: LockFileEx), and the
/// unit tests fake it (tests/unit/test-protocol.cc). Errors name `path`.
class ByteLocks {
public:
  virtual ~ByteLocks() = default;

  /// One try for `byte` in `mode`: Outcome::timed_out when someone else
  /// holds it in a mode that conflicts.
  [[nodiscard]] virtual Result<Outcome> try_lock(NativeHandle file, std::int64_t byte, LockMode mode,
                                                 const std::filesystem::path& path) = 0;

  /// Waits for `byte` in `mode` until `deadline`, which is not a single try.
  [[nodiscard]] virtual Result<Outcome> wait_lock(NativeHandle file, std::int64_t byte, LockMode mode,
                                                  const Deadline& deadline,
                                                  const std::filesystem::path& path) = 0;

  /// Waits until `deadline` for any one of the `count` bytes from `first`
  /// on, exclusive: the index of the one now held, or std::nullopt when the
  /// deadline passed first. Others granted meanwhile are given back. A
  /// byte freed by an unlock followed by ring(), or by closing the file, is
  /// seen at once.
  [[nodiscard]] virtual Result<std::optional<int>> wait_any(NativeHandle file, std::int64_t first, int count,
                                                            const Deadline& deadline,
                                                            const std::filesystem::path& path) = 0;

  /// Tells a wait_any elsewhere that a byte it waits for may be free now,
  /// after an unlock that such a wait may not see otherwise (Linux: the
  /// waiter watches the file's close events, and this opens and closes it).
  /// Nothing where wait_any needs no telling (Windows).
  virtual void ring(NativeHandle /*file*/) {}

  /// How others hold `byte`, without taking it.
  [[nodiscard]] virtual Result<Seen> probe(NativeHandle file, std::int64_t byte,
                                           const std::filesystem::path& path) = 0;

  [[nodiscard]] virtual Result<void> unlock(NativeHandle file, std::int64_t byte,
                                            const std::filesystem::path& path) = 0;

  /// Unlocks each of `bytes`, all held by this open file, which holds no
  /// other byte between the lowest and the highest of them: where locks
  /// belong to open files (OFD locks) one unlock over that range does it,
  /// and elsewhere one unlock each.
  [[nodiscard]] virtual Result<void> unlock_each(NativeHandle file, std::initializer_list<std::int64_t> bytes,
                                                 const std::filesystem::path& path) {
    Result<void> unlocked;
    for (const std::int64_t byte : bytes) {
      auto one = unlock(file, byte, path);
      if (!one && unlocked) {
        unlocked = std::move(one);
      }
    }
    return unlocked;
  }

  /// Unlocks what an open file may hold of the protocol, for a descriptor
  /// whose holds nobody here knows (`fasten unlock --fd`): on POSIX every
  /// byte from protocol::k_turnstile on, in one call; on Windows, whose
  /// unlocks must name exactly a range that was locked, protocol::k_data.
  [[nodiscard]] virtual Result<void> unlock_protocol(NativeHandle file,
                                                     const std::filesystem::path& path) = 0;

protected:
  ByteLocks() = default;
  ByteLocks(const ByteLocks&) = default;
  ByteLocks& operator=(const ByteLocks&) = default;
};

namespace platform {

/// This platform's byte locks.
[[nodiscard]] ByteLocks& byte_locks();

} // namespace platform

} // namespace fasten
