#pragma once

#include <cstdint>

// The byte layout of fasten's locks, shared by every platform's lock file and
// by `status`. The reader/writer protocol is explained at the top of
// lock-linux.cc, the slots of a counting semaphore at its slot functions; the
// manual documents both for other programs.
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

} // namespace fasten::protocol
