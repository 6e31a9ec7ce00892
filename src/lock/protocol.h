#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "lock/byte-locks.h"

// fasten's lock protocol: the bytes it locks and the order it locks them in,
// written once (protocol.cc) over the platform's byte locks (byte-locks.h).
// Why it is so, and what other programs may rely on: ARCHITECTURE.md,
// "Protocols"; the manual states it for other programs.
//
// The verbs: a lock is acquired and released (here, LockFile, Lock); a
// byte is locked and unlocked (ByteLocks, the platform's record locks).
namespace fasten::protocol {

/// Held by a writer while it waits for k_data; readers pass through it.
inline constexpr std::int64_t k_turnstile = std::int64_t{1} << 62;
/// The lock itself: shared by readers, exclusive for a writer.
inline constexpr std::int64_t k_data = k_turnstile + 1;

/// The most slots a counting semaphore can have.
inline constexpr int k_max_slots = 1024;
/// Held exclusive by the first slot waiter while it waits for any slot; the
/// waiters after it queue here, so a slot freed goes to the one that came first.
inline constexpr std::int64_t k_slot_queue = k_turnstile + 2;
/// Held shared, each through an open file of its own, by the nested fastens
/// that re-entered an exclusive hold of an ancestor (src/lock/nesting.h); the
/// exclusive holder takes it exclusive, waiting, before it unlocks k_data, so
/// that its release waits for every nested command that runs within it.
inline constexpr std::int64_t k_nested = k_turnstile + 3;
/// Slot i is byte k_slots + i, held exclusive by its one holder.
inline constexpr std::int64_t k_slots = k_turnstile + 1024;
/// A holder of one of N slots also holds byte k_slot_counts + N shared, so
/// that `status` can say of how many.
inline constexpr std::int64_t k_slot_counts = k_slots + k_max_slots;

/// The name (comm) of the keeper that runs between fasten and a command that
/// does not hold the lock itself (src/run/keeper-linux.h). With -o it holds
/// a copy of its fasten's lock, a hold that is its parent's: `status` leaves
/// it out where that parent is listed.
inline constexpr char k_keeper_name[] = "fasten-keeper";

/// Acquires the lock on `file` in `mode` by the reader/writer protocol, until `deadline`.
[[nodiscard]] Result<Outcome> acquire(ByteLocks& bytes, NativeHandle file, LockMode mode,
                                      const Deadline& deadline, const std::filesystem::path& path);

/// Releases what acquire() took.
[[nodiscard]] Result<void> release(ByteLocks& bytes, NativeHandle file, const std::filesystem::path& path);

/// Releases an exclusive hold that nested fastens may have re-entered:
/// waits until none holds k_nested (taking it exclusive keeps new ones out),
/// then unlocks k_data and k_nested.
[[nodiscard]] Result<void> release_after_nested(ByteLocks& bytes, NativeHandle file,
                                                const std::filesystem::path& path);

/// Acquires one of the slots 0 … slots - 1 (1 < slots <= k_max_slots) and the
/// lock shared with it, until `deadline`: the slot, or std::nullopt when the
/// deadline passed first.
[[nodiscard]] Result<std::optional<int>> acquire_slot(ByteLocks& bytes, NativeHandle file, int slots,
                                                      const Deadline& deadline,
                                                      const std::filesystem::path& path);

/// Releases what acquire_slot() took.
[[nodiscard]] Result<void> release_slot(ByteLocks& bytes, NativeHandle file, int slot, int slots,
                                        const std::filesystem::path& path);

/// Whether another's writer waits in the turnstile of `file` (for
/// ProcessLocks). False where the platform cannot look.
[[nodiscard]] bool writer_waiting(ByteLocks& bytes, NativeHandle file, const std::filesystem::path& path);

} // namespace fasten::protocol
