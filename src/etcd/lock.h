#pragma once

#include <memory>
#include <string>

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
/// the machine sleeps): the send time of the last renewal that etcd answered,
/// plus the TTL, less a margin. If it passes without another answer, or etcd
/// says the lease is gone, or the lock's key has disappeared, the lock is
/// lost, and the LostHook says so. Each of its requests ends by that deadline
/// whatever the number of endpoints, so the hook runs before etcd can have
/// expired the lease.
namespace fasten {

[[nodiscard]] Result<std::unique_ptr<Lock>> open_etcd_lock(const std::string& name,
                                                           const BackendOptions& options);
[[nodiscard]] Result<LockStatus> query_etcd_status(const std::string& name, const BackendOptions& options);

/// What fasten-etcd takes: etcd:// LOCKs, and lock files for any other.
[[nodiscard]] const Backend& etcd_backend();

} // namespace fasten
