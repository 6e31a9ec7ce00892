#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

#include "lock/error.h"
#include "lock/file-handle.h"
#include "lock/file-id.h"
#include "lock/result.h"

/// libfasten: inter-process locks on files.
///
/// A LockFile is one open lock file. Its lock is shared (any number of holders
/// together) or exclusive (one holder alone), and two LockFile objects exclude
/// each other exactly as two processes do, whichever threads use them. The
/// operating system drops the lock when the holder dies, however it dies.
namespace fasten {

enum class LockMode { shared, exclusive };

/// What an attempt to lock came to when nothing went wrong.
enum class Outcome { acquired, timed_out };

/// How long an acquire may wait: std::nullopt waits forever, zero makes
/// exactly one try.
using Timeout = std::optional<std::chrono::nanoseconds>;
inline constexpr Timeout wait_forever = std::nullopt;

/// Whether a lock belongs to the open file rather than to the process that
/// took it (Linux open-file-description locks). Then a child that inherits
/// the descriptor holds the lock too, and a lock on an inherited descriptor
/// outlives the process that took it. Classic fcntl locks (the build option
/// -Dlock_api=posix) belong to the process and end with it. On Windows
/// LockFileEx locks belong to the handle's open file, so this is true there
/// too: two LockFile objects exclude each other without any bookkeeping in
/// the process. (fasten does not hand them to the command there.)
[[nodiscard]] bool locks_belong_to_open_files() noexcept;

/// Whether files have POSIX permission bits, for OpenOptions::create_mode.
/// Not on Windows, whose files have access control lists instead.
[[nodiscard]] bool files_have_permission_bits() noexcept;

struct OpenOptions {
  /// The strongest mode the lock will be taken in. On POSIX an exclusive lock
  /// needs the file open for writing; a shared one only for reading, so it can
  /// also be taken on a read-only file or a directory. (On Windows either lock
  /// needs read access alone, and a directory takes neither.)
  LockMode access = LockMode::exclusive;
  /// Create the file when it is missing. The file is never truncated or
  /// written either way.
  bool create = true;
  /// Permission bits for a file that open() creates, applied exactly. Without
  /// them it gets 0666 less the umask. Where files have no permission bits
  /// (see files_have_permission_bits), open() refuses them as misuse.
  std::optional<unsigned> create_mode;
  /// Whether the open file goes to other programs (a command that inherits
  /// it, as fasten's does), whose fasten may then re-enter a hold of it
  /// (nesting.h). An exclusive hold's release then waits for those nested
  /// holds to end; otherwise it is one unlock. An adopted descriptor is
  /// taken to be shared so.
  bool handed_to_commands = false;
};

class LockFile {
public:
  [[nodiscard]] static Result<LockFile> open(std::filesystem::path path, const OpenOptions& options = {});

  /// Uses `descriptor`, already open (e.g. inherited from a shell's
  /// `exec 9>>file`), as the lock file; `name` stands for it in errors. The
  /// LockFile owns it from now on.
  [[nodiscard]] static Result<LockFile> adopt(NativeHandle descriptor, std::string name);

  LockFile(LockFile&& other) noexcept;
  LockFile& operator=(LockFile&& other) noexcept;
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;
  /// Releases the lock if it is held.
  ~LockFile();

  /// Waits up to `timeout` for the lock in `mode`. A lock that is already held
  /// by this object is an ErrorKind::misuse error: locks are neither reentrant
  /// nor upgradeable.
  [[nodiscard]] Result<Outcome> acquire(LockMode mode, Timeout timeout = wait_forever);

  /// Waits up to `timeout` for one of `slots` slots of the lock: a counting
  /// semaphore, which up to `slots` holders hold at once, each in a slot of
  /// its own (0 … slots - 1). The slot, or std::nullopt when the timeout
  /// passed first. One slot is the exclusive lock itself (slot 0). More
  /// share the lock with readers and are kept out by a writer, as readers
  /// are. The slot is held as LockMode::exclusive; slots must be from 1 to
  /// protocol::k_max_slots (ErrorKind::misuse otherwise). Where locks belong
  /// to the process (see locks_belong_to_open_files), the objects of one
  /// process hold at most one slot of a file at a time.
  [[nodiscard]] Result<std::optional<int>> acquire_slot(int slots, Timeout timeout = wait_forever);

  /// Releases the lock, for every descriptor that shares this open file (a
  /// child that inherited it included). Releasing a lock that is not held is
  /// an ErrorKind::misuse error.
  [[nodiscard]] Result<void> release();

  /// Whether the path the file was opened by still names it: false once the
  /// file was removed or another was moved over it (a lock on it then locks
  /// nothing that others opening the path will see). For a file opened by
  /// path, not an adopted descriptor.
  [[nodiscard]] Result<bool> is_named_by_its_path() const;

  /// Lets go of the file without unlocking or closing it: a lock held on an
  /// open file that others share (see locks_belong_to_open_files) stays held
  /// after this object is gone.
  void abandon() noexcept;

  /// The mode the lock is held in, or std::nullopt when it is not held.
  std::optional<LockMode> held() const noexcept { return m_held; }
  /// The slot held (acquire_slot), or std::nullopt.
  std::optional<int> slot() const noexcept { return m_slot; }
  const std::filesystem::path& path() const noexcept { return m_path; }
  /// Which file is open, whatever path names it.
  [[nodiscard]] Result<FileId> id() const;
  /// The open file, e.g. for a child process that is to keep the lock.
  NativeHandle native_handle() const noexcept { return m_file.get(); }

private:
  LockFile(std::filesystem::path path, FileHandle file) noexcept;
  [[nodiscard]] static Result<LockFile> make(std::filesystem::path path, FileHandle file);
  void release_quietly() noexcept;
  void close() noexcept;
  /// Locks with `lock`, which gets what is left of `timeout`, once the
  /// process's other objects on the file allow `mode` (ProcessLocks), where
  /// locks belong to the process.
  [[nodiscard]] Result<Outcome> acquire_in_process(LockMode mode, Timeout timeout,
                                                   const std::function<Result<Outcome>(Timeout)>& lock);

  /// Where locks belong to the process (see locks_belong_to_open_files), the
  /// file this one is open on, for the in-process bookkeeping.
  std::optional<FileId> m_process_file;
  std::filesystem::path m_path;
  FileHandle m_file;
  std::optional<LockMode> m_held;
  /// For a slot: which one, of how many.
  std::optional<int> m_slot;
  int m_slots = 1;
  /// OpenOptions::handed_to_commands.
  bool m_handed_to_commands = true;
};

/// Unlocks an open file that this process did not necessarily lock itself,
/// e.g. a descriptor a shell locked with `fasten exclusive --fd 9`.
[[nodiscard]] Result<void> unlock_open_file(NativeHandle descriptor, const std::string& name);

/// Holds a LockFile's lock for a scope and releases it when destroyed.
class [[nodiscard]] LockGuard {
public:
  /// Takes charge of `lock`, which must be held.
  explicit LockGuard(LockFile& lock) noexcept : m_lock(&lock) {}
  LockGuard(LockGuard&& other) noexcept : m_lock(std::exchange(other.m_lock, nullptr)) {}
  LockGuard& operator=(LockGuard&&) = delete;
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;
  ~LockGuard();

private:
  LockFile* m_lock;
};

/// Acquires `lock` and returns a guard that releases it, or std::nullopt when
/// the timeout ran out first.
[[nodiscard]] Result<std::optional<LockGuard>> acquire_guard(LockFile& lock, LockMode mode,
                                                             Timeout timeout = wait_forever);

template <typename R> struct WithLockValue {
  /// fn's result, or std::nullopt when the lock was not acquired in time.
  using type = std::optional<R>;
};
template <> struct WithLockValue<void> { using type = Outcome; };

/// Runs `fn` while holding the lock on `path` in `mode`: the analogue of the
/// fasteners decorators. Returns fn's result (or Outcome::acquired for a void
/// fn), std::nullopt (or Outcome::timed_out) when the lock was not acquired in
/// time, or the error that stopped it. The lock is released however fn ends.
template <typename Fn>
[[nodiscard]] auto with_lock(const std::filesystem::path& path, LockMode mode, Timeout timeout, Fn&& fn)
    -> Result<typename WithLockValue<std::invoke_result_t<Fn&>>::type> {
  using R = std::invoke_result_t<Fn&>;
  using Value = typename WithLockValue<R>::type;
  auto lock = FASTEN_TRY(
      LockFile::open(path, OpenOptions{.access = mode, .create = true, .create_mode = std::nullopt}));
  const auto guard = FASTEN_TRY(acquire_guard(lock, mode, timeout));
  if (!guard) {
    if constexpr (std::is_void_v<R>) {
      return Outcome::timed_out;
    } else {
      return Value{std::nullopt};
    }
  }
  if constexpr (std::is_void_v<R>) {
    std::invoke(fn);
    return Outcome::acquired;
  } else {
    return Value{std::invoke(fn)};
  }
}

} // namespace fasten
