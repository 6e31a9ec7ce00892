// The reader/writer and slot protocol, over the platform's byte locks. The
// protocol and why it is so: ARCHITECTURE.md, "Protocols".

#include "lock/protocol.h"

#include <cerrno>

namespace fasten::protocol {

namespace {

/// One byte: a try, then, unless the deadline allows a single try, a wait.
Result<Outcome> lock_byte(ByteLocks& bytes, NativeHandle file, std::int64_t byte, LockMode mode,
                          const Deadline& deadline, const std::filesystem::path& path) {
  const Outcome tried = FASTEN_TRY(bytes.try_lock(file, byte, mode, path));
  if (tried == Outcome::acquired || deadline.is_one_try()) {
    return tried;
  }
  return bytes.wait_lock(file, byte, mode, deadline, path);
}

/// Whether an acquire in `mode` queues in the turnstile rather than try
/// k_data at once: behind a writer there, and a writer behind readers queued
/// there too. Where nobody can look, everyone passes through it.
bool queues(Seen turnstile, LockMode mode) {
  switch (turnstile) {
  case Seen::free:
    return false;
  case Seen::shared:
    return mode == LockMode::exclusive;
  case Seen::exclusive:
  case Seen::unknown:
    break;
  }
  return true;
}

std::int64_t slot_byte(int slot) {
  return k_slots + slot;
}

/// The first free slot of 0 … slots - 1, without waiting.
Result<std::optional<int>> try_any_slot(ByteLocks& bytes, NativeHandle file, int slots,
                                        const std::filesystem::path& path) {
  for (int slot = 0; slot < slots; ++slot) {
    const Outcome tried = FASTEN_TRY(bytes.try_lock(file, slot_byte(slot), LockMode::exclusive, path));
    if (tried == Outcome::acquired) {
      return std::optional<int>(slot);
    }
  }
  return std::optional<int>();
}

/// A slot: at once if one is free and nobody queues for one, else after the
/// waiters before this one, holding k_slot_queue while it waits for any slot.
Result<std::optional<int>> acquire_any_slot(ByteLocks& bytes, NativeHandle file, int slots,
                                            const Deadline& deadline, const std::filesystem::path& path) {
  const Seen queue = FASTEN_TRY(bytes.probe(file, k_slot_queue, path));
  if (queue == Seen::free) {
    const auto slot = FASTEN_TRY(try_any_slot(bytes, file, slots, path));
    if (slot || deadline.is_one_try()) {
      return slot;
    }
  } else if (queue != Seen::unknown && deadline.is_one_try()) {
    // Someone queued is owed the next slot freed: a single try does not
    // take it past them.
    return std::optional<int>();
  }
  const Outcome queued =
      FASTEN_TRY(lock_byte(bytes, file, k_slot_queue, LockMode::exclusive, deadline, path));
  if (queued == Outcome::timed_out) {
    return std::optional<int>();
  }
  auto slot = try_any_slot(bytes, file, slots, path);
  if (slot && !slot.value() && !deadline.is_one_try()) {
    slot = bytes.wait_any(file, k_slots, slots, deadline, path);
  }
  (void)bytes.unlock(file, k_slot_queue, path);
  return slot;
}

} // namespace

Result<Outcome> acquire(ByteLocks& bytes, NativeHandle file, LockMode mode, const Deadline& deadline,
                        const std::filesystem::path& path) {
  const Seen turnstile = FASTEN_TRY(bytes.probe(file, k_turnstile, path));
  if (!queues(turnstile, mode)) {
    const Outcome tried = FASTEN_TRY(bytes.try_lock(file, k_data, mode, path));
    if (tried == Outcome::acquired || deadline.is_one_try()) {
      return tried;
    }
  }
  const Outcome queued = FASTEN_TRY(lock_byte(bytes, file, k_turnstile, mode, deadline, path));
  if (queued == Outcome::timed_out) {
    return queued;
  }
  auto outcome = lock_byte(bytes, file, k_data, mode, deadline, path);
  (void)bytes.unlock(file, k_turnstile, path);
  return outcome;
}

Result<void> release(ByteLocks& bytes, NativeHandle file, const std::filesystem::path& path) {
  return bytes.unlock(file, k_data, path);
}

Result<void> release_after_nested(ByteLocks& bytes, NativeHandle file, const std::filesystem::path& path) {
  // Failing that (a descriptor it cannot take exclusive), the release goes
  // on: the hold must not outlive its command for want of a wait.
  (void)bytes.wait_lock(file, k_nested, LockMode::exclusive, Deadline(wait_forever), path);
  auto released = release(bytes, file, path);
  (void)bytes.unlock(file, k_nested, path);
  return released;
}

namespace {

/// What a slot's shared lock on a descriptor open for writing alone says.
Error slot_error(const Error& error, const std::filesystem::path& path) {
  if (error.kind() == ErrorKind::lock && error.sys_errno() == EBADF) {
    // POSIX's shared lock on a descriptor open for writing alone (exec
    // 9>FILE); Windows opens lock files for reading and never says EBADF.
    return Error(ErrorKind::lock, "a slot needs the file open for reading and writing (exec 9<>FILE)",
                 path.string(), EBADF);
  }
  return error;
}

} // namespace

Result<std::optional<int>> acquire_slot(ByteLocks& bytes, NativeHandle file, int slots,
                                        const Deadline& deadline, const std::filesystem::path& path) {
  // The count first, before the slot: nobody takes it exclusive, so holding
  // it while waiting for a slot keeps nobody out, and the hand-off of a
  // freed slot does not wait for it.
  const std::int64_t count = k_slot_counts + slots;
  auto counted = lock_byte(bytes, file, count, LockMode::shared, deadline, path);
  if (!counted) {
    return slot_error(counted.error(), path);
  }
  if (counted.value() != Outcome::acquired) {
    return std::optional<int>();
  }
  const auto slot = acquire_any_slot(bytes, file, slots, deadline, path);
  if (!slot || !slot.value()) {
    (void)bytes.unlock(file, count, path);
    return slot;
  }
  const auto shared = acquire(bytes, file, LockMode::shared, Deadline(deadline.timeout_left()), path);
  if (shared && shared.value() == Outcome::acquired) {
    return slot;
  }
  (void)bytes.unlock(file, count, path);
  (void)bytes.unlock(file, slot_byte(*slot.value()), path);
  bytes.ring(file);
  if (!shared) {
    return slot_error(shared.error(), path);
  }
  return std::optional<int>();
}

Result<void> release_slot(ByteLocks& bytes, NativeHandle file, int slot, int slots,
                          const std::filesystem::path& path) {
  // The holder's open file holds nothing else between these: the queue
  // byte and k_nested are not a slot holder's, and it holds one slot.
  auto released = bytes.unlock_each(file, {k_data, slot_byte(slot), k_slot_counts + slots}, path);
  bytes.ring(file);
  return released;
}

bool writer_waiting(ByteLocks& bytes, NativeHandle file, const std::filesystem::path& path) {
  const auto seen = bytes.probe(file, k_turnstile, path);
  return seen && seen.value() == Seen::exclusive;
}

} // namespace fasten::protocol
