#include "lock/backend.h"

#include "lock/etcd-lock.h"
#include "lock/etcd-url.h"

namespace fasten {

namespace {

/// The file backend: a LockFile behind the Lock interface.
class FileLock final : public Lock {
public:
  FileLock(std::string name, LockFile file) : m_name(std::move(name)), m_file(std::move(file)) {}

  const std::string& name() const noexcept override { return m_name; }

  Result<Outcome> acquire(LockMode mode, Timeout timeout, const WaitHook& on_wait) override {
    return acquire_file_lock(m_file, mode, timeout, on_wait);
  }

  Result<void> release() override { return m_file.release(); }
  std::optional<LockMode> held() const noexcept override { return m_file.held(); }
  Result<LockStatus> status() override { return query_status(m_file.path()); }
  std::optional<NativeHandle> native_handle() const noexcept override { return m_file.native_handle(); }

private:
  std::string m_name;
  LockFile m_file;
};

} // namespace

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

Result<std::unique_ptr<Lock>> open_lock(const std::string& name, const BackendOptions& options) {
  if (is_etcd_url(name)) {
    return open_etcd_lock(name, options.remote);
  }
  // From UTF-8, which a path made from a plain string is not on Windows.
  auto file = LockFile::open(std::filesystem::path(std::u8string(name.begin(), name.end())), options.file);
  if (!file) {
    return file.error();
  }
  return std::unique_ptr<Lock>(std::make_unique<FileLock>(name, std::move(file).value()));
}

Result<LockStatus> query_lock_status(const std::string& name, const BackendOptions& options) {
  if (is_etcd_url(name)) {
    return query_etcd_status(name, options.remote);
  }
  return query_status(name);
}

} // namespace fasten
