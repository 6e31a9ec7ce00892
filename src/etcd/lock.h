#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "etcd/syntax.h"
#include "lock/backend.h"

/// Locks in etcd, taken the way etcd's own client library takes them
/// (clientv3/concurrency's Mutex), not with the server's lock API, which in
/// 3.4 can hand a waiter a lock whose lease has run out:
///
/// - A lease, granted first and renewed every third of its TTL from then on,
///   by a thread of its own, for as long as the lock is wanted or held.
/// - A key under the lock's name, attached to the lease and created in one
///   transaction: NAME/<lease id in hex> for exclusive (and write), as
///   `etcdctl lock NAME` makes it, NAME/read/<lease id in hex> for read, and
///   NAME/slot/<lease id in hex> for a slot of --slots N (queue.h has the
///   rules). Its create revision is its place in the queue, and the fencing
///   token.
/// - Each waiter watches only the key that can let it in, so a release
///   wakes one waiter, not all of them: a writer the newest older key of any
///   kind, a reader the newest older writer's key. Then it looks again, and
///   finally checks that its own key still exists.
///
/// Queueing by create revision is first come, first served, so neither
/// readers nor writers starve. `etcdctl lock NAME` waits for every older key
/// under NAME/, and its key looks like a writer's to fasten, so the two
/// exclude each other.
///
/// The lease thread keeps a deadline on CLOCK_BOOTTIME (which runs on while
/// the machine sleeps): the send time of the last renewal that counted, plus
/// the TTL, less a margin. A renewal counts once etcd has answered it and a
/// linearizable read of the lock's key, made after it, has found the key on
/// the lease at its create revision, in no newer raft term than the renewal. If the deadline passes without another,
/// or etcd says the lease is gone, or the lock's key has disappeared, moved
/// to another lease or been created again, the lock is lost, and the
/// LostHook says so. Each of its requests ends by that deadline
/// whatever the number of endpoints, so the hook runs before etcd can have
/// expired the lease.
namespace fasten {

/// Called while an acquire waits, when its turn has come but a holder ahead
/// of it vanished without leaving (queue.h): with that holder's key, its
/// TTL, and whether the waiter waits it out (false: its deadline has passed,
/// as with -n, and the mark is left to go by itself).
using VanishedHook = std::function<void(const std::string& key, std::chrono::seconds ttl, bool waits)>;

/// Called while an acquire waits, each time a waiter lost its place in the
/// queue (a lease that may have run out, a key deleted) and queues again;
/// the argument says why.
using RequeueHook = std::function<void(const std::string& reason)>;

/// What an etcd lock needs besides BackendOptions, which the program that
/// makes the backend (fasten-etcd) fills from its command line.
struct EtcdOptions {
  /// The lease's time to live: how long the lock outlives a holder that can
  /// no longer renew it.
  std::chrono::seconds ttl{k_default_ttl};
  /// What the holder runs, stored with its key for `status`.
  std::string holder_command{};
  /// The endpoints for an etcd:// URL that names none, as a comma-separated
  /// list (FASTEN_ETCD_ENDPOINTS).
  std::string default_endpoints{};
  /// For -v: a waiter queues again.
  RequeueHook on_requeue{};
  /// For -v: a waiter waits out a holder that vanished.
  VanishedHook on_vanished{};
  /// FASTEN_ETCD_RECHECK: how long one watch lasts at most before the waiter
  /// looks at the queue again (more than 0).
  std::chrono::milliseconds recheck{k_default_etcd_recheck};
};

[[nodiscard]] Result<std::unique_ptr<Lock>>
open_etcd_lock(const std::string& name, const BackendOptions& options, const EtcdOptions& etcd);
[[nodiscard]] Result<LockStatus> query_etcd_status(const std::string& name, const EtcdOptions& etcd);

/// What fasten-etcd takes: etcd:// LOCKs, opened with `etcd`, and lock
/// files for any other.
[[nodiscard]] Backend etcd_backend(EtcdOptions etcd);

} // namespace fasten
