#include "lock/backend.h"

namespace fasten {

namespace {

/// A LockFile behind the Lock interface. The command inherits its open file,
/// and so holds the lock with fasten.
class FileBackedLock final : public Lock {
public:
  FileBackedLock(LockFile file, std::filesystem::path status_path, bool keep_locked)
      : m_file(std::move(file)), m_status_path(std::move(status_path)), m_keep_locked(keep_locked) {}

  ~FileBackedLock() override {
    if (m_keep_locked) {
      m_file.abandon();
    }
  }

  Result<std::optional<Hold>> acquire(LockMode mode, Timeout timeout, const WaitHook& on_wait) override {
    auto outcome = acquire_file_lock(m_file, mode, timeout, on_wait);
    if (!outcome) {
      return outcome.error();
    }
    if (outcome.value() == Outcome::timed_out) {
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
  LockFile m_file;
  std::filesystem::path m_status_path;
  bool m_keep_locked;
};

/// From UTF-8, which a path made from a plain string is not on Windows.
std::filesystem::path path_of(const std::string& name) {
  return std::filesystem::path(std::u8string(name.begin(), name.end()));
}

Result<std::unique_ptr<Lock>> open_file_lock(const std::string& name, const BackendOptions& options) {
  auto file = LockFile::open(path_of(name), options.file);
  if (!file) {
    return file.error();
  }
  return std::unique_ptr<Lock>(
      std::make_unique<FileBackedLock>(std::move(file).value(), path_of(name), false));
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
                                               std::filesystem::path status_path) {
  auto file = LockFile::adopt(descriptor, std::move(name));
  if (!file) {
    return file.error();
  }
  return std::unique_ptr<Lock>(
      std::make_unique<FileBackedLock>(std::move(file).value(), std::move(status_path), true));
}

Result<Outcome> acquire_file_lock(LockFile& lock, LockMode mode, Timeout timeout, const WaitHook& on_wait) {
  if (!on_wait || timeout == std::chrono::nanoseconds(0)) {
    return lock.acquire(mode, timeout);
  }
  const auto start = std::chrono::steady_clock::now();
  auto first = lock.acquire(mode, std::chrono::nanoseconds(0));
  if (!first || first.value() == Outcome::acquired) {
    return first;
  }
  on_wait();
  Timeout left = timeout;
  if (left) {
    left = std::max(std::chrono::nanoseconds(0), *left - (std::chrono::steady_clock::now() - start));
  }
  return lock.acquire(mode, left);
}

} // namespace fasten
