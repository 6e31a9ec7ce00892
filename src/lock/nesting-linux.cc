// Nested holds on Linux: the proof is what /proc/self/fdinfo/N says of this
// process's own descriptors (nesting.h). Only procfs and the lock file's
// path are read: no other process's files.

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <string>

#include "lock/lock-platform.h"
#include "lock/nesting.h"
#include "lock/proc-linux.h"
#include "lock/protocol.h"

namespace fasten {

namespace {

std::string fdinfo_of(int descriptor) {
  return "/proc/self/fdinfo/" + std::to_string(descriptor);
}

/// A hold that a nested fasten re-entered: `byte`, held shared through an
/// open file of its own (`m_file`), which the command inherits.
class NestedLock final : public Lock {
public:
  NestedLock(FileHandle file, std::int64_t byte, std::filesystem::path path, int inherited)
      : m_file(std::move(file)), m_byte(byte), m_path(std::move(path)), m_inherited(inherited) {}
  ~NestedLock() override { (void)release(); }

  Result<std::optional<Hold>> acquire(LockMode, Timeout, const WaitHook&) override {
    if (!m_held) {
      return Error(ErrorKind::misuse, "a re-entered hold is taken once", m_path.string());
    }
    return std::optional<Hold>(
        Hold{.handle = m_file.get(),
             .held_by_copies = true,
             .detail = "re-entered the hold of the open file on descriptor " + std::to_string(m_inherited)});
  }

  Result<void> release() override {
    if (!std::exchange(m_held, false)) {
      return {};
    }
    // Explicitly: a daemon the command left behind may share the open file.
    return platform::byte_locks().unlock(m_file.get(), m_byte, m_path);
  }

  Result<LockStatus> status() override { return query_status(m_path); }

  Result<LockPlace> place() const override {
    return LockPlace{.kind = LockPlace::Kind::file,
                     .file = FASTEN_TRY(platform::file_id(m_file.get(), m_path.string()))};
  }

private:
  FileHandle m_file;
  std::int64_t m_byte;
  std::filesystem::path m_path;
  int m_inherited;
  bool m_held = true;
};

} // namespace

bool nested_holds_supported() noexcept {
  return FASTEN_LOCK_API_OFD != 0;
}

Result<std::optional<InheritedHold>> find_inherited_hold(const std::filesystem::path& path) {
  if (!nested_holds_supported()) {
    return std::optional<InheritedHold>();
  }
  const auto file = FASTEN_TRY(platform::path_file_id(path));
  if (!file) {
    return std::optional<InheritedHold>();
  }
  ProcDirectory fds("/proc/self/fdinfo");
  if (!fds.opened()) {
    return std::optional<InheritedHold>();
  }
  std::optional<InheritedHold> found;
  while (const auto name = fds.next()) {
    int descriptor = -1;
    std::from_chars(name->data(), name->data() + name->size(), descriptor);
    // An open file holds locks only on its own file: one fstat rules out a
    // descriptor of another file (most of them: stdin, stdout, stderr, a
    // pipe), where reading its fdinfo costs four system calls and procfs's
    // text of it.
    const auto id = platform::file_id(descriptor, {});
    if (!id || id.value() != *file) {
      continue;
    }
    const DescriptorHold held = held_through(fdinfo_of(descriptor), *file);
    if (held.data && (!found || held.exclusive)) {
      found = InheritedHold{descriptor, held.exclusive ? LockMode::exclusive : LockMode::shared};
    }
  }
  return found;
}

namespace {

/// Whether descriptor `fd` of process `pid` and this process's `own` share
/// one open file description. kcmp needs the right to ptrace `pid` (an
/// ancestor of the same user has it), and a container's seccomp filter may
/// refuse it: where it cannot tell, they count as one, so that a request
/// that may be converting its own hold waits, as it would without this
/// check, rather than be refused.
bool shares_open_file(int own, int pid, int fd) {
  const long order = ::syscall(SYS_kcmp, ::getpid(), static_cast<pid_t>(pid), KCMP_FILE, own, fd);
  return order == 0 || order < 0;
}

/// How the open files of process `pid` hold the data byte of `file`,
/// leaving out the open file of this process's descriptor `except`, if any.
std::optional<LockMode> held_by_process(int pid, const FileId& file, std::optional<int> except) {
  const std::string directory = "/proc/" + std::to_string(pid) + "/fdinfo/";
  ProcDirectory fds(directory);
  if (!fds.opened()) {
    return std::nullopt; // gone, or another user's
  }
  std::optional<LockMode> held;
  while (const auto name = fds.next()) {
    const std::string fd_name(*name);
    const DescriptorHold through = held_through(directory + fd_name, file);
    if (!through.data || (held && !through.exclusive)) {
      continue;
    }
    int fd = -1;
    std::from_chars(fd_name.data(), fd_name.data() + fd_name.size(), fd);
    if (except && fd >= 0 && shares_open_file(*except, pid, fd)) {
      continue;
    }
    held = through.exclusive ? LockMode::exclusive : LockMode::shared;
  }
  return held;
}

/// The strongest hold that one of `pids` has on the data byte of `file`,
/// but through the open file of this process's descriptor `except`.
std::optional<LockMode> held_by_processes(const std::vector<int>& pids, const FileId& file,
                                          std::optional<int> except = std::nullopt) {
  std::optional<LockMode> held;
  for (const int pid : pids) {
    const auto mode = held_by_process(pid, file, except);
    if (mode && (!held || *mode == LockMode::exclusive)) {
      held = mode;
    }
  }
  return held;
}

} // namespace

std::optional<LockMode> held_by_an_ancestor(const std::filesystem::path& path,
                                            const std::vector<int>& ancestors) {
  if (!nested_holds_supported()) {
    // Classic locks name their process in /proc/locks, which status reads
    // without looking at any process's descriptors.
    const auto status = query_status(path);
    if (!status) {
      return std::nullopt;
    }
    for (const auto& holder : status.value().holders) {
      if (holder.pid && std::find(ancestors.begin(), ancestors.end(), *holder.pid) != ancestors.end()) {
        return status.value().state == LockState::exclusive ? LockMode::exclusive : LockMode::shared;
      }
    }
    return std::nullopt;
  }
  const auto file = platform::path_file_id(path);
  if (!file || !file.value()) {
    return std::nullopt;
  }
  return held_by_processes(ancestors, *file.value());
}

std::optional<LockMode> descriptor_held_by_an_ancestor(NativeHandle descriptor,
                                                       const std::vector<int>& ancestors) {
  if (!nested_holds_supported()) {
    return held_by_an_ancestor("/proc/self/fd/" + std::to_string(descriptor), ancestors);
  }
  const auto file = platform::file_id(descriptor, "descriptor " + std::to_string(descriptor));
  if (!file) {
    return std::nullopt;
  }
  // A hold through the descriptor's own open file is the one it is to
  // convert, not one it waits for.
  return held_by_processes(ancestors, file.value(), descriptor);
}

Result<std::unique_ptr<Lock>> reenter(const InheritedHold& held, LockMode mode,
                                      const std::filesystem::path& path) {
  if (held.mode == LockMode::shared && mode == LockMode::exclusive) {
    return Error(ErrorKind::misuse, "a shared hold does not cover an exclusive one", path.string());
  }
  // An open file of its own, on the very file of the inherited one; for
  // reading, which a shared lock needs and the inherited open allowed.
  const std::string own = "/proc/self/fd/" + std::to_string(held.descriptor);
  FileHandle file(::open(own.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!file.valid()) {
    return Error(ErrorKind::open, "cannot open lock file again to re-enter its hold", path.string(), errno);
  }
  const std::int64_t byte = held.mode == LockMode::shared ? protocol::k_data : protocol::k_nested;
  auto& bytes = platform::byte_locks();
  if (FASTEN_TRY(bytes.try_lock(file.get(), byte, LockMode::shared, path)) != Outcome::acquired) {
    return std::unique_ptr<Lock>(); // the holder is letting go (it holds k_nested exclusive)
  }
  // Joined first, proved second: a holder that lets go takes k_nested before
  // it unlocks the data byte, so a hold still there now lasts until we leave.
  const DescriptorHold still =
      held_through(fdinfo_of(held.descriptor), FASTEN_TRY(platform::file_id(file.get(), path.string())));
  if (!still.data || (still.exclusive != (held.mode == LockMode::exclusive))) {
    (void)bytes.unlock(file.get(), byte, path);
    return std::unique_ptr<Lock>();
  }
  return std::unique_ptr<Lock>(std::make_unique<NestedLock>(std::move(file), byte, path, held.descriptor));
}

} // namespace fasten
