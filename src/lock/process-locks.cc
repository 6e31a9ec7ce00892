#include "lock/process-locks.h"

#include "lock/deadline.h"

namespace fasten {

ProcessLocks& ProcessLocks::instance() {
  static ProcessLocks table;
  return table;
}

bool ProcessLocks::holds_anything(const Entry& entry) const {
  return entry.shared > 0 || entry.exclusive || entry.busy;
}

void ProcessLocks::close_if_unused(const FileId& file) {
  const auto found = m_files.find(file);
  if (found != m_files.end() && !holds_anything(found->second) && found->second.acquiring == 0) {
    // Closed here, while the caller holds m_mutex: after it lets go another
    // thread could take the kernel lock, and a close then would drop it.
    found->second.parked.clear();
    m_files.erase(found);
  }
}

bool ProcessLocks::wait_turn(std::unique_lock<std::mutex>& guard, Entry& entry, LockMode mode,
                             const Deadline& deadline, const std::function<bool()>& writer_waiting) {
  const bool exclusive = mode == LockMode::exclusive;
  // A reader joins the process's shared hold unless another process's writer
  // waits in the turnstile; then it waits here until the hold has ended, and
  // queues in the kernel like a first reader. (Queueing in the kernel while
  // the process still holds the lock would look like a deadlock to the
  // kernel's detection, EDEADLK, though another thread is about to release.)
  const auto ready = [&] {
    if (entry.busy || entry.exclusive) {
      return false;
    }
    if (exclusive) {
      return entry.shared == 0;
    }
    return entry.exclusive_waiting == 0 && (entry.shared == 0 || !writer_waiting());
  };
  if (exclusive) {
    ++entry.exclusive_waiting;
  }
  bool in_time = true;
  if (deadline.is_forever()) {
    m_changed.wait(guard, ready);
  } else {
    in_time = m_changed.wait_until(guard, deadline.when(), ready);
  }
  if (exclusive) {
    --entry.exclusive_waiting;
  }
  return in_time;
}

Result<Outcome> ProcessLocks::acquire(const FileId& file, LockMode mode, Timeout timeout,
                                      const std::function<Result<Outcome>(Timeout)>& lock,
                                      const std::function<bool()>& writer_waiting) {
  const Deadline deadline(timeout);
  std::unique_lock guard(m_mutex);
  Entry& entry = m_files[file];
  ++entry.acquiring;
  if (!wait_turn(guard, entry, mode, deadline, writer_waiting)) {
    --entry.acquiring;
    m_changed.notify_all(); // a reader may have waited for this writer only
    close_if_unused(file);
    return Outcome::timed_out;
  }
  if (mode == LockMode::shared && entry.shared > 0) {
    --entry.acquiring;
    ++entry.shared;
    return Outcome::acquired;
  }

  entry.busy = true;
  guard.unlock();
  auto outcome = lock(deadline.timeout_left());
  guard.lock();
  entry.busy = false;
  --entry.acquiring;
  if (outcome && outcome.value() == Outcome::acquired) {
    if (mode == LockMode::exclusive) {
      entry.exclusive = true;
    } else {
      ++entry.shared;
    }
  }
  m_changed.notify_all();
  close_if_unused(file);
  return outcome;
}

Result<void> ProcessLocks::release(const FileId& file, LockMode mode,
                                   const std::function<Result<void>()>& unlock) {
  std::unique_lock guard(m_mutex);
  Entry& entry = m_files[file];
  Result<void> released;
  if (mode == LockMode::exclusive) {
    released = unlock();
    entry.exclusive = false;
  } else if (--entry.shared == 0) {
    released = unlock();
  }
  m_changed.notify_all();
  close_if_unused(file);
  return released;
}

void ProcessLocks::close(const FileId& file, FileHandle handle) {
  std::unique_lock guard(m_mutex);
  const auto found = m_files.find(file);
  if (found != m_files.end() && holds_anything(found->second)) {
    found->second.parked.push_back(std::move(handle));
    return;
  }
  // The process holds no lock on the file: close now, while the table is
  // locked. After the unlock another thread could take the kernel lock, and
  // this close would drop it (`handle`, a parameter, would close only after
  // the return, outside the lock).
  handle.reset();
}

} // namespace fasten
