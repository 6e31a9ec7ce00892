#include "lock/backend.h"

#include "lock/deadline.h"

namespace fasten {

namespace {

/// A LockFile behind the Lock interface. The command inherits its open file,
/// and so holds the lock with fasten.
class FileBackedLock final : public Lock {
public:
  FileBackedLock(LockFile file, std::filesystem::path status_path, bool keep_locked, std::optional<int> slots)
      : m_file(std::move(file)), m_status_path(std::move(status_path)), m_keep_locked(keep_locked),
        m_slots(slots) {}

  ~FileBackedLock() override {
    if (m_keep_locked) {
      m_file.abandon();
    }
  }

  Result<std::optional<Hold>> acquire(LockMode mode, Timeout timeout, const WaitHook& on_wait) override {
    if (m_slots && mode == LockMode::exclusive) {
      return acquire_slot(timeout, on_wait);
    }
    const Outcome outcome = FASTEN_TRY(acquire_file_lock(m_file, mode, timeout, on_wait));
    if (outcome == Outcome::timed_out) {
      return std::optional<Hold>();
    }
    return std::optional<Hold>(Hold{.handle = m_file.native_handle()});
  }

  Result<void> release() override {
    if (m_keep_locked) {
      return {};
    }
    return m_file.release();
  }

  Result<LockStatus> status() override { return query_status(m_status_path); }

private:
  Result<std::optional<Hold>> acquire_slot(Timeout timeout, const WaitHook& on_wait) {
    const auto slot = FASTEN_TRY(acquire_file_slot(m_file, *m_slots, timeout, on_wait));
    if (!slot) {
      return std::optional<Hold>();
    }
    return std::optional<Hold>(Hold{.handle = m_file.native_handle(), .slot = slot});
  }

  LockFile m_file;
  std::filesystem::path m_status_path;
  bool m_keep_locked;
  std::optional<int> m_slots;
};

/// From UTF-8, which a path made from a plain string is not on Windows.
std::filesystem::path path_of(const std::string& name) {
  return std::filesystem::path(std::u8string(name.begin(), name.end()));
}

Result<std::unique_ptr<Lock>> open_file_lock(const std::string& name, const BackendOptions& options) {
  auto file = FASTEN_TRY(LockFile::open(path_of(name), options.file));
  return std::unique_ptr<Lock>(
      std::make_unique<FileBackedLock>(std::move(file), path_of(name), false, options.slots));
}

Result<LockStatus> file_status(const std::string& name, const BackendOptions&) {
  return query_status(path_of(name));
}

} // namespace

const Backend& file_backend() {
  static const Backend backend{.open = open_file_lock, .status = file_status};
  return backend;
}

Result<std::unique_ptr<Lock>> adopt_descriptor(NativeHandle descriptor, std::string name,
                                               std::filesystem::path status_path, std::optional<int> slots) {
  auto file = FASTEN_TRY(LockFile::adopt(descriptor, std::move(name)));
  return std::unique_ptr<Lock>(
      std::make_unique<FileBackedLock>(std::move(file), std::move(status_path), true, slots));
}

Result<Outcome> acquire_file_lock(LockFile& lock, LockMode mode, Timeout timeout, const WaitHook& on_wait) {
  const Deadline deadline(timeout);
  if (!on_wait || deadline.is_one_try()) {
    return lock.acquire(mode, timeout);
  }
  auto first = lock.acquire(mode, std::chrono::nanoseconds(0));
  if (!first || first.value() == Outcome::acquired) {
    return first;
  }
  on_wait();
  return lock.acquire(mode, deadline.timeout_left());
}

Result<std::optional<int>> acquire_file_slot(LockFile& lock, int slots, Timeout timeout,
                                             const WaitHook& on_wait) {
  const Deadline deadline(timeout);
  if (!on_wait || deadline.is_one_try()) {
    return lock.acquire_slot(slots, timeout);
  }
  auto first = lock.acquire_slot(slots, std::chrono::nanoseconds(0));
  if (!first || first.value()) {
    return first;
  }
  on_wait();
  return lock.acquire_slot(slots, deadline.timeout_left());
}

} // namespace fasten
