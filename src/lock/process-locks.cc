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

std::vector<FileHandle> ProcessLocks::tidy(const FileId& file) {
  std::vector<FileHandle> to_close;
  const auto found = m_files.find(file);
  if (found != m_files.end() && !holds_anything(found->second) && found->second.acquiring == 0) {
    to_close = std::move(found->second.parked);
    m_files.erase(found);
  }
  return to_close;
}

Result<Outcome> ProcessLocks::acquire(const FileId& file, LockMode mode, Timeout timeout,
                                      const std::function<Result<Outcome>(Timeout)>& take,
                                      const std::function<bool()>& writer_waiting) {
  const Deadline deadline(timeout);
  std::unique_lock lock(m_mutex);
  Entry& entry = m_files[file];
  ++entry.acquiring;
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
  bool in_time = true;
  if (exclusive) {
    ++entry.exclusive_waiting;
  }
  if (deadline.is_forever()) {
    m_changed.wait(lock, ready);
  } else {
    in_time = m_changed.wait_until(lock, deadline.when(), ready);
  }
  if (exclusive) {
    --entry.exclusive_waiting;
  }
  if (!in_time) {
    --entry.acquiring;
    m_changed.notify_all(); // a reader may have waited for this writer only
    auto to_close = tidy(file);
    return Outcome::timed_out;
  }
  if (!exclusive && entry.shared > 0) {
    --entry.acquiring;
    ++entry.shared;
    return Outcome::acquired;
  }

  entry.busy = true;
  lock.unlock();
  auto outcome = take(deadline.timeout_left());
  lock.lock();
  entry.busy = false;
  --entry.acquiring;
  if (outcome && outcome.value() == Outcome::acquired) {
    if (exclusive) {
      entry.exclusive = true;
    } else {
      ++entry.shared;
    }
  }
  m_changed.notify_all();
  auto to_close = tidy(file);
  return outcome;
}

Result<void> ProcessLocks::release(const FileId& file, LockMode mode,
                                   const std::function<Result<void>()>& unlock) {
  std::unique_lock lock(m_mutex);
  Entry& entry = m_files[file];
  Result<void> released;
  if (mode == LockMode::exclusive) {
    released = unlock();
    entry.exclusive = false;
  } else if (--entry.shared == 0) {
    released = unlock();
  }
  m_changed.notify_all();
  auto to_close = tidy(file);
  return released;
}

void ProcessLocks::close(const FileId& file, FileHandle handle) {
  std::unique_lock lock(m_mutex);
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
