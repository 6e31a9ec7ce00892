#include "lock/backend.h"

#include <utility>

#include "lock/deadline.h"

namespace fasten {

namespace {

/// A LockFile behind the Lock interface. The command inherits its open file,
/// and so holds the lock with fasten.
class FileBackedLock final : public Lock {
public:
  /// A lock file opened by path: `options` open it again when the path
  /// comes to name another file. Without them (an adopted descriptor), the
  /// lock is on the open file whatever names it, and stays locked when this
  /// object goes.
  FileBackedLock(LockFile file, std::optional<BackendOptions> options, std::optional<int> slots)
      : m_file(std::move(file)), m_path(m_file.path()), m_reopen(std::move(options)), m_slots(slots) {}

  ~FileBackedLock() override {
    if (!m_reopen) {
      m_file.abandon();
    }
  }

  /// Takes the lock, then checks that the path still names the file locked,
  /// as udevadm lock does: a waiter on a file that was removed, or moved
  /// over, would otherwise get a lock that nobody who opens the path now
  /// sees, and run beside the holder of the new file. If it does not, lets
  /// go and waits again on the file the path names now, within the timeout.
  Result<std::optional<Hold>> acquire(LockMode mode, Timeout timeout, const WaitHook& on_wait) override {
    const Deadline deadline(timeout);
    bool waited = false;
    WaitHook once;
    if (on_wait) {
      once = [&] {
        if (!std::exchange(waited, true)) {
          on_wait();
        }
      };
    }
    while (true) {
      auto hold = FASTEN_TRY(acquire_once(mode, deadline.timeout_left(), once));
      if (!hold || !m_reopen || FASTEN_TRY(m_file.is_named_by_its_path())) {
        return hold;
      }
      FASTEN_TRY(reopen());
    }
  }

  Result<void> release() override {
    if (!m_reopen) {
      return {};
    }
    return m_file.release();
  }

  /// The path's for a file opened by path; an adopted descriptor's own.
  /// Asked from another thread while acquire waits (status_is_local), so it
  /// reads nothing that a reopen changes.
  Result<LockStatus> status() override {
    return m_reopen ? query_status(m_path) : query_descriptor_status(m_adopted);
  }

  Result<LockPlace> place() const override {
    return LockPlace{.kind = LockPlace::Kind::file, .file = FASTEN_TRY(m_file.id())};
  }

private:
  Result<std::optional<Hold>> acquire_once(LockMode mode, Timeout timeout, const WaitHook& on_wait) {
    if (m_slots && mode == LockMode::exclusive) {
      const auto slot = FASTEN_TRY(acquire_file_slot(m_file, *m_slots, timeout, on_wait));
      if (!slot) {
        return std::optional<Hold>();
      }
      return std::optional<Hold>(hold(slot));
    }
    const Outcome outcome = FASTEN_TRY(acquire_file_lock(m_file, mode, timeout, on_wait));
    if (outcome == Outcome::timed_out) {
      return std::optional<Hold>();
    }
    return std::optional<Hold>(hold(std::nullopt));
  }

  Hold hold(std::optional<int> slot) const {
    return Hold{
        .handle = m_file.native_handle(), .held_by_copies = locks_belong_to_open_files(), .slot = slot};
  }

  /// Lets go of the lock on a file the path no longer names, and opens the
  /// one it names now (creating it, as the first open would have).
  Result<void> reopen() {
    FASTEN_TRY(m_file.release());
    auto path = m_file.path();
    m_file = FASTEN_TRY(LockFile::open(std::move(path), m_reopen->file));
    if (m_reopen->on_replaced) {
      m_reopen->on_replaced();
    }
    return {};
  }

  LockFile m_file;
  const std::filesystem::path m_path;
  std::optional<BackendOptions> m_reopen;
  std::optional<int> m_slots;
  /// An adopted descriptor, never reopened.
  const NativeHandle m_adopted = m_reopen ? k_invalid_handle : m_file.native_handle();
};

/// From UTF-8, which a path made from a plain string is not on Windows.
std::filesystem::path path_of(const std::string& name) {
  return std::filesystem::path(std::u8string(name.begin(), name.end()));
}

Result<std::unique_ptr<Lock>> open_file_lock(const std::string& name, const BackendOptions& options) {
  // The command inherits the open file (Hold::handle).
  BackendOptions handed = options;
  handed.file.handed_to_commands = true;
  auto file = FASTEN_TRY(LockFile::open(path_of(name), handed.file));
  return std::unique_ptr<Lock>(std::make_unique<FileBackedLock>(std::move(file), handed, handed.slots));
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
                                               std::optional<int> slots) {
  auto file = FASTEN_TRY(LockFile::adopt(descriptor, std::move(name)));
  return std::unique_ptr<Lock>(std::make_unique<FileBackedLock>(std::move(file), std::nullopt, slots));
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
