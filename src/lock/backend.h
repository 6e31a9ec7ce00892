#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "lock/lock.h"
#include "lock/status.h"

/// The lock backends behind one interface: a LOCK that is a path is a file
/// lock (LockFile), one that is an etcd:// URL is a lock in etcd. What the
/// command line does with a lock (wait, run the command, release, say who
/// holds it) it does through fasten::Lock.
namespace fasten {

/// Called once, just before an acquire starts to wait: the lock was not free.
using WaitHook = std::function<void()>;

/// Called once, from another thread, when a held remote lock is lost; the
/// argument says why ("the lease expired", ...).
using LostHook = std::function<void(const std::string& reason)>;

/// What a held etcd lock is in etcd: its key, and the revision that created
/// it, which is also its fencing token.
struct RemoteHold {
  std::string key;
  std::int64_t revision = 0;
};

class Lock {
public:
  Lock() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  /// Releases the lock if it is held.
  virtual ~Lock() = default;

  /// LOCK as the user named it: a path or an etcd:// URL.
  virtual const std::string& name() const noexcept = 0;

  /// Waits up to `timeout` for the lock in `mode`, calling `on_wait` first if
  /// it has to wait at all. As LockFile::acquire: a timeout is a value, and a
  /// lock held already is an ErrorKind::misuse error.
  [[nodiscard]] virtual Result<Outcome> acquire(LockMode mode, Timeout timeout, const WaitHook& on_wait) = 0;
  [[nodiscard]] virtual Result<void> release() = 0;
  virtual std::optional<LockMode> held() const noexcept = 0;

  /// Who holds the lock and how many wait; never takes it.
  [[nodiscard]] virtual Result<LockStatus> status() = 0;

  /// The open file a command can inherit to hold the lock with fasten, for
  /// file locks.
  virtual std::optional<NativeHandle> native_handle() const noexcept { return std::nullopt; }

  /// For a held remote lock: its key and fencing token.
  virtual std::optional<RemoteHold> remote_hold() const { return std::nullopt; }

  /// Whether the lock can be lost while it is held (a lease that runs out),
  /// as opposed to a file lock, which lasts until it is released.
  virtual bool can_be_lost() const noexcept { return false; }

  /// Has `hook` called (once, from another thread) when a held lock is lost;
  /// at once if it is lost already. Replaces an earlier hook.
  virtual void on_lost(LostHook hook) { (void)hook; }
};

/// What an etcd lock needs besides its URL.
struct RemoteOptions {
  /// The lease's time to live: how long the lock outlives a fasten that can
  /// no longer renew it (killed, paused, cut off), and so how long others
  /// wait for a holder that died. It is renewed every third of it.
  std::chrono::seconds ttl{10};
  /// The endpoints for an etcd:// URL that names none (`etcd:///NAME`), as a
  /// comma-separated list (the command line's FASTEN_ETCD_ENDPOINTS).
  std::string default_endpoints;
  /// What the holder is running, stored with its key so that `status` can
  /// show it.
  std::string holder_command;
};

struct BackendOptions {
  OpenOptions file;
  RemoteOptions remote;
};

/// Whether this build can take locks in etcd.
[[nodiscard]] bool etcd_supported() noexcept;

/// Opens the lock `name` names: a lock file, or a lock in etcd (which is not
/// contacted before acquire or status).
[[nodiscard]] Result<std::unique_ptr<Lock>> open_lock(const std::string& name, const BackendOptions& options);

/// `status` for any LOCK, without opening or creating a lock file.
[[nodiscard]] Result<LockStatus> query_lock_status(const std::string& name, const BackendOptions& options);

/// LockFile::acquire, calling `on_wait` first when the lock is not free. A
/// first try without waiting tells, so only a wait forever or with a timeout
/// pays for the extra call.
[[nodiscard]] Result<Outcome> acquire_file_lock(LockFile& lock, LockMode mode, Timeout timeout,
                                                const WaitHook& on_wait);

} // namespace fasten
