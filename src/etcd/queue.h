#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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
///
/// Each fasten key has a mark: a key on no lease, outside NAME/ (so that
/// `etcdctl lock NAME` never waits for one), made in the transaction that
/// makes the key, and deleted before the key whenever its holder leaves in
/// order (a release, a timeout, a signal). A mark whose key is gone tells
/// that its holder vanished without leaving: it crashed, was cut off, or its
/// lease was revoked under it, by hand or by a deposed leader that resumed
/// and revoked leases its own clock had run out (etcd issue 15247). That
/// holder may still be running its command, until its own deadline, at most
/// its TTL after the key went. So a waiter whose turn has come, and that
/// finds such a mark of a holder that excluded it, first waits the TTL the
/// mark stores, and then deletes the mark (vanished). The first to find it
/// also puts the mark on a lease of that TTL that nobody renews (arms it),
/// so that the mark goes by itself even where no waiter waits the TTL out
/// (-n, a shorter -w, a waiter killed meanwhile); a waiter that sees the
/// mark go sooner goes on sooner.
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

/// NAME~fasten-marks/: where the marks of lock `name`'s keys are.
[[nodiscard]] std::string mark_prefix(const std::string& name);
/// The mark of queue key `key`: the same suffix under mark_prefix.
[[nodiscard]] std::string mark_key(const std::string& name, const std::string& key);
/// A mark's value: {"ttl": seconds}, its holder's TTL.
[[nodiscard]] std::string mark_value(std::chrono::seconds ttl);

/// The marks of holders that vanished: marks (armed or not) whose queue key
/// is not among `keys`, read in the same transaction; only those of the
/// kinds `matter` says, each with the TTL its mark stores (`fallback` for a
/// mark whose value says none; at most 86400 s, the longest --ttl). `ttl`:
/// the longest of those. Empty when there are none. No lock is named with
/// "~fasten-marks" in it (url.cc), so every key under NAME~fasten-marks/ is
/// a mark.
struct Vanished {
  struct Holder {
    std::string key;
    KeyValue mark;
    std::chrono::seconds ttl{0};
  };
  std::vector<Holder> holders{};
  std::chrono::seconds ttl{0};
};
[[nodiscard]] Vanished vanished(const std::string& name, const std::vector<KeyValue>& keys,
                                const std::vector<KeyValue>& marks, bool (*matter)(KeyKind),
                                std::chrono::seconds fallback);
/// Which vanished holders a waiter of `kind` waits out at its turn: any, for
/// a writer; a writer, for a reader or a slot holder (another slot holder's
/// counts where a slot is claimed: slot_kind).
[[nodiscard]] bool (*excluding(KeyKind kind))(KeyKind);
[[nodiscard]] bool slot_kind(KeyKind kind);

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

/// Who holds lock `name`, how many wait, and who vanished without letting
/// go, from its keys and its marks in create order, read at one revision
/// (`fallback`: the TTL of a mark that stores none). A writer or reader
/// whose turn has come waits while an older mark of a vanished holder that
/// excludes it is left: it is waiting that holder out, not holding.
[[nodiscard]] LockStatus status_from_keys(const std::string& name, const std::vector<KeyValue>& keys,
                                          const std::vector<KeyValue>& marks, std::chrono::seconds fallback);

} // namespace fasten::etcd
