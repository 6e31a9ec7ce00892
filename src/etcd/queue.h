#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "etcd/client.h"
#include "lock/status.h"

/// The rules of a lock's queue in etcd, on the keys under NAME/ as a range
/// reads them: which key a holder queues with, what it waits for, which slot
/// of a counting semaphore it takes, and what status the keys add up to.
/// Nothing here talks to etcd; lock.cc does, by these rules.
///
/// The queue is the keys in create-revision order:
/// - A writer (exclusive or write, and `etcdctl lock NAME`) holds the lock
///   once no older key is left.
/// - A reader holds it once no older writer is left.
/// - A slot holder (`--slots N`, N > 1) holds it once no older writer is
///   left and fewer than N older slot keys are; then it claims the lowest
///   slot below N that no other holder has claimed, with a key of its own
///   that exists only if it did not before (a slot's claim), on its lease.
///   The first slot waiter watches every slot key (any one that goes lets it
///   in); each one behind it watches the slot key just ahead of it, whose
///   claim (a put) or deletion moves it up.
/// Readers and slot holders share the lock; a writer waits for both, and
/// keeps newer ones out while it waits and holds.
namespace fasten::etcd {

enum class KeyKind {
  /// NAME/<lease id in hex>, as `etcdctl lock NAME` makes it; any key under
  /// NAME/ that is not one of the others counts as a writer's.
  writer,
  /// NAME/read/<lease id in hex>.
  reader,
  /// NAME/slot/<lease id in hex>: a holder of one of N slots, or a waiter
  /// for one.
  slot,
  /// NAME/slot-claim/<slot>: the slot is taken, by the holder whose lease
  /// the key is on.
  slot_claim,
};

/// NAME/: every key of lock `name`'s queue is under it.
[[nodiscard]] std::string queue_prefix(const std::string& name);
[[nodiscard]] KeyKind kind_of(const std::string& name, const std::string& key);
/// The key a holder with `lease` queues with on lock `name`.
[[nodiscard]] std::string queue_key(const std::string& name, KeyKind kind, std::int64_t lease);
/// Where the claims of lock `name`'s slots are, and the claim of one.
[[nodiscard]] std::string slot_claim_prefix(const std::string& name);
[[nodiscard]] std::string slot_claim_key(const std::string& name, int slot);
/// The slot keys' prefix: what the first slot waiter watches.
[[nodiscard]] std::string slot_prefix(const std::string& name);

/// Who holds a key, as its value says it: {"host": ..., "pid": ...,
/// "command": ...}, and for a slot key "slots" (its N) and, once it holds a
/// slot, "slot".
struct HolderValue {
  std::string host{};
  int pid = 0;
  std::string command{};
  std::optional<int> slots{};
  std::optional<int> slot{};
};
[[nodiscard]] std::string holder_value(const HolderValue& holder);

/// What the key of `kind` created at revision `revision` waits for, given
/// the keys older than it, newest first (for a slot key, with their values),
/// read at store revision `read_at`; std::nullopt when it holds the lock.
/// `slots` is its N, for a slot key.
[[nodiscard]] std::optional<WatchRequest> what_to_wait_for(const std::string& name, KeyKind kind, int slots,
                                                           const std::vector<KeyValue>& older,
                                                           std::int64_t read_at);

/// The slot that the holder with `lease` takes: the one it claimed already
/// (a retried claim that did go through), or else the lowest one below
/// `slots` that none of `claims` takes; std::nullopt when all are taken.
struct SlotChoice {
  int slot = 0;
  bool claimed = false;
};
[[nodiscard]] std::optional<SlotChoice>
choose_slot(const std::string& name, const std::vector<KeyValue>& claims, int slots, std::int64_t lease);

/// Who holds lock `name` and how many wait, from its keys in create order.
[[nodiscard]] LockStatus status_from_keys(const std::string& name, const std::vector<KeyValue>& keys);

} // namespace fasten::etcd
