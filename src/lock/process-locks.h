#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "lock/deadline.h"
#include "lock/file-id.h"
#include "lock/lock.h"

namespace fasten {

/// The in-process half of locks that belong to the process rather than to an
/// open file: classic fcntl record locks (-Dlock_api=posix).
///
/// The kernel sees one holder per process there, so two LockFile objects in
/// one process would not exclude each other, and closing any descriptor of
/// the file would drop every lock the process holds on it. This table makes
/// the objects of one process wait for each other as processes do (with
/// writers first, as across processes), takes the kernel lock once for all
/// the process's shared holders, and keeps descriptors open while the process
/// holds a lock on their file.
class ProcessLocks {
public:
  static ProcessLocks& instance();

  /// Takes the kernel lock with `lock` once this process's other objects on
  /// the file allow `mode`, all within `timeout`. `lock` gets what is left of
  /// the timeout. A shared acquire joins the process's shared hold without
  /// `lock`, unless `writer_waiting` says another process's writer waits.
  [[nodiscard]] Result<Outcome> acquire(const FileId& file, LockMode mode, Timeout timeout,
                                        const std::function<Result<Outcome>(Timeout)>& lock,
                                        const std::function<bool()>& writer_waiting);

  /// Gives up one object's hold; the kernel lock goes with `unlock` when it
  /// was the process's last.
  [[nodiscard]] Result<void> release(const FileId& file, LockMode mode,
                                     const std::function<Result<void>()>& unlock);

  /// Closes `handle` now, or once the process holds no lock on `file`.
  void close(const FileId& file, FileHandle handle);

private:
  struct Entry {
    int shared = 0;
    bool exclusive = false;
    /// An object is taking the kernel lock for the process.
    bool busy = false;
    int exclusive_waiting = 0;
    /// Calls of acquire() under way, which refer to this entry.
    int acquiring = 0;
    /// Descriptors whose close would drop the process's locks.
    std::vector<FileHandle> parked;
  };
  bool holds_anything(const Entry& entry) const;
  /// Removes the entry once nothing refers to it, and closes its parked
  /// descriptors; the caller holds m_mutex.
  void close_if_unused(const FileId& file);
  /// Waits until this process's other objects on the file allow `mode`, or
  /// the deadline passes (false).
  bool wait_turn(std::unique_lock<std::mutex>& guard, Entry& entry, LockMode mode, const Deadline& deadline,
                 const std::function<bool()>& writer_waiting);

  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::map<FileId, Entry> m_files;
};

} // namespace fasten
