#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lock/file-id.h"
#include "lock/lock.h"
#include "lock/status.h"

/// The seam between the command line and the locks it can take. A lock file
/// (LockFile) is one backend; a lock in etcd, in the fasten-etcd program
/// (src/etcd), is another. What the command line does with a lock (wait, run
/// the command, release, say who holds it) it does through fasten::Lock, and
/// what the command gets of a held lock it reads from the Hold that acquire
/// returns, without naming the backend.
namespace fasten {

/// Called once, just before an acquire starts to wait: the lock was not free.
using WaitHook = std::function<void()>;

/// Called once, from another thread, when a held lock is lost; the argument
/// says why ("the lease expired", ...).
using LostHook = std::function<void(const std::string& reason)>;

/// What the command gets of a held lock.
struct Hold {
  /// The open file locked, which the command inherits (file locks); none
  /// for a lock that only fasten can keep.
  std::optional<NativeHandle> handle{};
  /// Whether a copy of `handle` holds the lock too, the lock belonging to
  /// the open file rather than to the process (locks_belong_to_open_files):
  /// then a command that inherits it holds the lock with fasten and keeps
  /// it should fasten die, and a copy kept elsewhere keeps it too.
  bool held_by_copies = false;
  /// Variables for the command's environment: a lock in etcd gives its
  /// fencing token and key.
  std::vector<std::pair<std::string, std::string>> environment{};
  /// For a counting semaphore (BackendOptions::slots): the slot held, 0 …
  /// slots - 1, which the command gets as FASTEN_SLOT.
  std::optional<int> slot{};
  /// Where the lock is held, for -v ("key K, fencing token T"); empty when
  /// the name says it all.
  std::string detail{};
  /// For a lock that can be lost while it is held (a lease that runs out):
  /// has the hook called once, from another thread, when it is, and at once
  /// if it is lost already. Empty for a lock that lasts until it is released.
  /// Valid as long as the Lock.
  std::function<void(LostHook)> on_lost{};
  /// For a lock that can be lost: has `*at` kept, from another thread, at
  /// the time by which the command must have been stopped (CLOCK_BOOTTIME,
  /// nanoseconds since its epoch), moved on at every renewal, so that a
  /// process other than fasten can stop the command by then should fasten
  /// not (run::StopBy). Valid as long as the Lock; `*at` must outlive it.
  std::function<void(std::atomic<std::int64_t>* at)> share_deadline{};
};

/// Where a lock comes in the one order in which a fasten that takes several
/// locks takes them, whatever order they were named in, so that two fastens
/// that want the same locks cannot each hold one and wait for the other (as
/// `udevadm lock` sorts its devices): lock files first, by device and inode,
/// then locks in etcd, by name. Two locks in the same place are one lock.
struct LockPlace {
  enum class Kind { file, etcd };
  Kind kind = Kind::file;
  /// A lock file: which file, whatever path names it.
  FileId file{};
  /// A lock in etcd: NAME, the prefix of its keys, whatever endpoints name it.
  std::string name{};

  auto operator<=>(const LockPlace&) const = default;
};

class Lock {
public:
  Lock() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  /// Releases the lock if it is held.
  virtual ~Lock() = default;

  /// Waits up to `timeout` for the lock in `mode` (exclusive for a slot of a
  /// lock opened with slots), calling `on_wait` first if it has to wait at all. The hold, or std::nullopt
  /// when the timeout passed first; a lock held already is an ErrorKind::misuse error.
  [[nodiscard]] virtual Result<std::optional<Hold>> acquire(LockMode mode, Timeout timeout,
                                                            const WaitHook& on_wait) = 0;
  [[nodiscard]] virtual Result<void> release() = 0;

  /// Who holds the lock and how many wait; never takes it.
  [[nodiscard]] virtual Result<LockStatus> status() = 0;

  /// Whether status() answers from this machine's own tables, at once and
  /// from any thread, also while acquire waits (a lock file's reads /proc):
  /// then a terminal's waiting line asks it every second. A lock whose
  /// status is a network request is asked once, before the wait.
  virtual bool status_is_local() const noexcept { return true; }

  /// Where the lock comes among several (LockPlace).
  [[nodiscard]] virtual Result<LockPlace> place() const = 0;
};

/// What opening a lock needs besides its name. What a backend needs beyond
/// these (an etcd lock's TTL and endpoints) its program hands it when it
/// makes the Backend (src/programs).
struct BackendOptions {
  OpenOptions file;
  /// A counting semaphore: an exclusive acquire takes one of this many
  /// slots, and up to this many hold the lock at once. std::nullopt: the
  /// plain lock, with no slot.
  std::optional<int> slots;
  /// Lock files: called when an acquired lock was let go again because LOCK
  /// no longer names the file locked (it was removed, or another file was
  /// moved over it), before the acquire waits again on the file LOCK names
  /// now, within the same timeout.
  std::function<void()> on_replaced;
};

/// The locks a program can take: `open` makes a Lock of LOCK (a file lock is
/// opened or created, an etcd lock not contacted yet); `status` says who
/// holds LOCK without opening or creating anything.
struct Backend {
  std::function<Result<std::unique_ptr<Lock>>(const std::string& name, const BackendOptions& options)> open;
  std::function<Result<LockStatus>(const std::string& name, const BackendOptions& options)> status;
};

/// Lock files, named by path.
[[nodiscard]] const Backend& file_backend();

/// A descriptor a shell opened (--fd) as a Lock that stays locked once
/// acquired: the lock belongs to the open file the shell shares, and neither
/// release nor the destructor unlocks it. `name` stands for it in errors;
/// its status is that of the file it is open on (query_descriptor_status);
/// `slots`, as BackendOptions::slots.
[[nodiscard]] Result<std::unique_ptr<Lock>> adopt_descriptor(NativeHandle descriptor, std::string name,
                                                             std::optional<int> slots = std::nullopt);

/// LockFile::acquire, calling `on_wait` first when the lock is not free. A
/// first try without waiting tells, so only a wait forever or with a timeout
/// pays for the extra call.
[[nodiscard]] Result<Outcome> acquire_file_lock(LockFile& lock, LockMode mode, Timeout timeout,
                                                const WaitHook& on_wait);

/// LockFile::acquire_slot, calling `on_wait` first when no slot is free, as
/// acquire_file_lock does.
[[nodiscard]] Result<std::optional<int>> acquire_file_slot(LockFile& lock, int slots, Timeout timeout,
                                                           const WaitHook& on_wait);

} // namespace fasten
