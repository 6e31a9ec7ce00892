// Linux locks: fcntl record locks on two bytes of the lock file, and a timer
// of the waiting thread's own (SIGEV_THREAD_ID, Linux's) to end a timed wait.
//
// Which fcntl locks. These are open-file-description (OFD) locks
// (F_OFD_SETLK/F_OFD_SETLKW): they belong to the open file, not to the
// process, so two LockFile objects in one process exclude each other as two
// processes would, a child that inherits the descriptor keeps the lock, and
// closing some other descriptor of the same file does not drop it. They are in
// the same kernel table as classic fcntl/lockf locks, so they exclude the locks
// that Python fasteners, lockf(3) and fcntl(2) users take on the same file.
// Built with -Dlock_api=posix, the classic F_SETLK/F_SETLKW calls are used
// instead (a Linux build option, not a port: the timed wait needs
// SIGEV_THREAD_ID).
//
// How a timed wait works. The wait itself is F_OFD_SETLKW: the kernel blocks
// and wakes us the moment the lock is ours, no polling. What ends the wait at
// the deadline is a signal that interrupts the call with EINTR. The design
// must hold in a multi-threaded program and whatever signal mask or
// dispositions the process inherited:
//
//  - Each thread has its own POSIX timer (timer_create with SIGEV_THREAD_ID),
//    so the signal goes to the waiting thread and to no other; other threads'
//    masks and waits do not matter.
//  - The timer signal (timer_signal()) gets a handler that does nothing
//    (on_timer_signal), installed without SA_RESTART
//    so the wait returns EINTR, while some thread waits with it; the
//    disposition it found is put back after (TimerHandler). The thread
//    unblocks the signal only around the wait and restores its mask after, so
//    an inherited blocked mask or SIG_IGN does not stop the timeout.
//  - The timer is armed for the absolute deadline on CLOCK_MONOTONIC, and
//    then fires again every k_refire until it is disarmed. A signal that
//    lands after the mask is unblocked but before fcntl has started to sleep
//    is spent on the handler and does not interrupt the wait; the next firing
//    does, so that race costs at most k_refire.
//  - EINTR for any other reason (an unrelated signal with a handler) is not a
//    timeout: the wait goes on until the monotonic clock says the deadline has
//    passed.
//
// The lock protocol over these byte locks is protocol.cc's (ARCHITECTURE.md,
// "Protocols"): this file locks, waits for, probes and unlocks single bytes.
// The uncontended lock costs two fcntl calls, and only a conflict with a
// timeout sets up the timer.

#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lock/deadline.h"
#include "lock/linux-clock.h"
#include "lock/lock-platform.h"
#include "lock/lockable-linux.h"
#include "lock/protocol.h"

namespace fasten {

void FileHandle::reset(NativeHandle handle) noexcept {
  if (valid()) {
    // Not retried on EINTR: on Linux the descriptor is closed even then.
    ::close(m_handle);
  }
  m_handle = handle;
}

NativeHandle handle_from_number(int number) noexcept {
  return number;
}

std::string system_message(int sys_errno) {
  return std::strerror(sys_errno);
}

namespace {

#if FASTEN_LOCK_API_OFD
constexpr int k_get_lock = F_OFD_GETLK;
constexpr int k_set_lock = F_OFD_SETLK;
constexpr int k_set_lock_wait = F_OFD_SETLKW;
#else
constexpr int k_get_lock = F_GETLK;
constexpr int k_set_lock = F_SETLK;
constexpr int k_set_lock_wait = F_SETLKW;
#endif

constexpr std::chrono::milliseconds k_refire{1};

int timer_signal() {
  return SIGRTMIN + 3;
}

/// The timer signal ends a wait with EINTR, and does nothing more.
extern "C" void on_timer_signal(int) {
}

/// The timer signal's handler, installed while any thread of the process
/// waits with it and no longer: the first wait saves the disposition it
/// finds and the last puts it back, so a program's own handler (or SIG_IGN)
/// is as it was between waits. Installed at each first wait, not once: the
/// program may have changed it since.
class TimerHandler {
public:
  TimerHandler() {
    std::lock_guard guard(mutex());
    if (users()++ == 0) {
      struct sigaction action {};
      action.sa_handler = on_timer_signal;
      sigemptyset(&action.sa_mask);
      action.sa_flags = 0; // no SA_RESTART: the wait must return EINTR
      sigaction(timer_signal(), &action, &saved());
    }
  }
  ~TimerHandler() {
    std::lock_guard guard(mutex());
    if (--users() == 0) {
      sigaction(timer_signal(), &saved(), nullptr);
    }
  }
  TimerHandler(const TimerHandler&) = delete;
  TimerHandler& operator=(const TimerHandler&) = delete;

private:
  static std::mutex& mutex() {
    static std::mutex made;
    return made;
  }
  static int& users() {
    static int made = 0;
    return made;
  }
  static struct sigaction& saved() {
    static struct sigaction made {};
    return made;
  }
};

const sigset_t& timer_signal_only() {
  static const sigset_t set = [] {
    sigset_t made;
    sigemptyset(&made);
    sigaddset(&made, timer_signal());
    return made;
  }();
  return set;
}

struct flock byte_range(short type, off_t start, off_t length = 1) {
  struct flock range {};
  range.l_type = type;
  range.l_whence = SEEK_SET;
  range.l_start = start;
  range.l_len = length;
  range.l_pid = 0; // must be 0 for OFD locks
  return range;
}

bool is_conflict(int error) {
  return error == EAGAIN || error == EACCES;
}

Error lock_error(int error, LockMode mode, const std::filesystem::path& path) {
  if (error == EBADF) {
    return Error(ErrorKind::lock,
                 mode == LockMode::exclusive ? "cannot take an exclusive lock on a file not open for writing"
                                             : "cannot take a shared lock on a file not open for reading",
                 path.string(), error);
  }
  if (error == ENOLCK) {
    return Error(ErrorKind::system, "cannot lock (no locks left)", path.string(), error);
  }
  return Error(ErrorKind::lock, "cannot lock", path.string(), error);
}

/// The calling thread's timer, created on first use and deleted when the
/// thread ends.
class ThreadTimer {
public:
  ThreadTimer() {
    struct sigevent event {};
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = timer_signal();
    event._sigev_un._tid = static_cast<pid_t>(::syscall(SYS_gettid));
    if (timer_create(CLOCK_MONOTONIC, &event, &m_timer) == 0) {
      m_valid = true;
    } else {
      m_errno = errno;
    }
  }
  ~ThreadTimer() {
    if (m_valid) {
      timer_delete(m_timer);
    }
  }
  ThreadTimer(const ThreadTimer&) = delete;
  ThreadTimer& operator=(const ThreadTimer&) = delete;

  bool valid() const { return m_valid; }
  int creation_errno() const { return m_errno; }
  /// Lets go of the timer without deleting it (it was the parent's of a fork).
  void forget() { m_valid = false; }

  /// False (errno says why) where the timer could not be set: a wait
  /// without it would outlive its deadline.
  [[nodiscard]] bool arm(const timespec& deadline) {
    itimerspec spec{};
    spec.it_value = deadline;
    spec.it_interval.tv_nsec = std::chrono::nanoseconds(k_refire).count();
    return timer_settime(m_timer, TIMER_ABSTIME, &spec, nullptr) == 0;
  }
  void disarm() {
    itimerspec spec{};
    timer_settime(m_timer, 0, &spec, nullptr);
  }

private:
  timer_t m_timer{};
  bool m_valid = false;
  int m_errno = 0;
};

/// CLOCK_MONOTONIC, the clock the timer is armed on.
using MonotonicClock = LinuxClock<CLOCK_MONOTONIC>;

/// `deadline` on CLOCK_MONOTONIC, for timer_settime with TIMER_ABSTIME;
/// saturated, so that a deadline of centuries is no overflow.
timespec monotonic_timespec(const Deadline& deadline) {
  const auto now = MonotonicClock::now().time_since_epoch();
  const auto left = deadline.left();
  const auto since =
      left >= std::chrono::nanoseconds::max() - now ? std::chrono::nanoseconds::max() : now + left;
  const auto seconds = std::chrono::floor<std::chrono::seconds>(since);
  timespec spec{};
  spec.tv_sec = static_cast<time_t>(seconds.count());
  spec.tv_nsec = static_cast<long>((since - seconds).count());
  return spec;
}

/// How many times this process has been forked into a child, as the child
/// counts: a thread's timer belongs to the process it was made in.
std::atomic<unsigned> g_forks{0};

/// The calling thread's timer, made at its first wait and made again in a
/// child of fork: POSIX timers are not inherited, and the one the parent's
/// thread made names nothing (or another timer) in the child.
ThreadTimer& thread_timer() {
  static const bool counted = [] {
    pthread_atfork(nullptr, nullptr, [] { g_forks.fetch_add(1, std::memory_order_relaxed); });
    return true;
  }();
  (void)counted;
  thread_local std::optional<ThreadTimer> timer;
  thread_local unsigned made_after = 0;
  const unsigned forks = g_forks.load(std::memory_order_relaxed);
  if (!timer || made_after != forks) {
    if (timer) {
      timer->forget(); // the parent's: not this process's to delete
    }
    timer.emplace();
    made_after = forks;
  }
  return *timer;
}

/// Blocks in F_SETLKW on `range` until it is granted or `deadline` passes
/// (Outcome::timed_out).
Result<Outcome> wait_until(NativeHandle file, struct flock range, LockMode mode, const Deadline& deadline,
                           const std::filesystem::path& path) {
  ThreadTimer& timer = thread_timer();
  if (!timer.valid()) {
    return Error(ErrorKind::system, "cannot create a timer for the timeout", path.string(),
                 timer.creation_errno());
  }
  const TimerHandler handler;
  if (!timer.arm(monotonic_timespec(deadline))) {
    return Error(ErrorKind::system, "cannot set a timer for the timeout", path.string(), errno);
  }
  sigset_t saved;
  pthread_sigmask(SIG_UNBLOCK, &timer_signal_only(), &saved);

  Result<Outcome> outcome = Outcome::timed_out;
  while (true) {
    if (fcntl(file, k_set_lock_wait, &range) == 0) {
      outcome = Outcome::acquired;
      break;
    }
    if (errno != EINTR) {
      outcome = lock_error(errno, mode, path);
      break;
    }
    if (deadline.passed()) {
      break;
    }
  }

  timer.disarm();
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  return outcome;
}

/// A non-blocking fcntl set-lock, retried on EINTR.
bool set_lock(NativeHandle file, struct flock& range) {
  while (fcntl(file, k_set_lock, &range) != 0) {
    if (errno != EINTR) {
      return false;
    }
  }
  return true;
}

// Waiting for any one of N bytes (a slot of a counting semaphore), in the
// waiting thread alone, whatever N. An fcntl wait is for one range and ends
// when all of it is free: one wait cannot say "any". So the thread waits in
// ppoll(2) on an inotify instance that watches the lock file's close events:
// a holder that ends or is killed closes the file, and one that frees a slot
// and goes on rings (FcntlByteLocks::ring: it opens and closes the file). On
// an event the thread tries every byte without waiting, and waits again. No
// signal, timer or handler: ppoll's timeout ends the wait at the deadline or
// at the next look. inotify sees only this machine's closes, and the kernel
// reports a close just before it drops the closing file's locks: so the
// thread tries again a moment after an event that freed nothing (k_settle),
// and every k_rescan in any case, which is how a slot freed on another NFS
// client, or by a program that unlocks it and keeps the file open without
// ringing, is found. Without inotify, the thread blocks in F_SETLKW on one
// byte of the N (which one depends on the pid, so that successive waiters
// spread over the slots) until the next look. The queue byte the thread
// holds meanwhile (protocol.cc) shows it as the one waiter (status-linux.cc).

/// How often the waiting thread tries every byte without an event: a slot
/// freed where inotify does not see it (another machine on NFS, a holder
/// that unlocks and keeps the file open without ringing) goes unused at most
/// this long.
constexpr std::chrono::milliseconds k_rescan{500};
/// How soon after a close event that freed nothing it tries again: a
/// closing holder's locks go just after inotify reports the close.
constexpr std::chrono::milliseconds k_settle{5};

/// inotify instances, kept open and lent to one wait at a time: closing an
/// instance that watched a file waits for the kernel's mark reaper (an SRCU
/// grace period, a tenth of a millisecond and more), which would fall
/// between a freed slot and its taker. One process has as many as it ever
/// had waits for any slot at once: fasten, one. An instance given back
/// keeps its watch and the events queued since, until it is lent again:
/// removing them belongs to no hand-off.
class NotifyPool {
public:
  /// An instance and its watch.
  struct Watcher {
    FileHandle notify;
    int watch = -1;
  };

  /// An instance that watches `file`'s close events and has no event
  /// queued, or an invalid handle (no inotify, no /proc).
  static Watcher lend(NativeHandle file) {
    Watcher idle;
    {
      std::lock_guard guard(mutex());
      if (!pool().empty()) {
        idle = std::move(pool().back());
        pool().pop_back();
      }
    }
    if (idle.notify.valid() && idle.watch >= 0) {
      inotify_rm_watch(idle.notify.get(), idle.watch); // does not wait for the reaper
    }
    if (!idle.notify.valid()) {
      idle.notify.reset(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    }
    const std::string name = "/proc/self/fd/" + std::to_string(file);
    const int watch = idle.notify.valid() ? inotify_add_watch(idle.notify.get(), name.c_str(),
                                                              IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)
                                          : -1;
    idle.watch = watch;
    if (watch < 0) {
      give_back(std::move(idle));
      return Watcher();
    }
    drain_events(idle.notify.get()); // the old watch's, and its IN_IGNORED
    return idle;
  }

  /// Takes back what lend() gave, still watching.
  static void give_back(Watcher lent) {
    if (!lent.notify.valid()) {
      return;
    }
    std::lock_guard guard(mutex());
    pool().push_back(std::move(lent));
  }

  /// Reads every event queued: true if there was one.
  static bool drain_events(int notify) {
    alignas(inotify_event) char events[4096];
    bool any = false;
    ssize_t got = 0;
    while ((got = read(notify, events, sizeof events)) > 0) {
      any = true;
      if (static_cast<std::size_t>(got) + sizeof(inotify_event) + NAME_MAX + 1 <= sizeof events) {
        break; // another event would have fitted: none was left
      }
    }
    return any;
  }

private:
  static std::mutex& mutex() {
    static std::mutex made;
    return made;
  }
  static std::vector<Watcher>& pool() {
    static std::vector<Watcher> made;
    return made;
  }
};

/// Waits on `count` bytes of a file from `first` on, for the first that it
/// can take: in ppoll on the lock file's close events, trying every byte
/// after each.
class AnyByteWait {
public:
  AnyByteWait(NativeHandle file, std::int64_t first, int count)
      : m_file(file), m_first(first), m_count(count),
        m_blocked_on(static_cast<int>(static_cast<unsigned>(getpid()) % static_cast<unsigned>(count))) {}
  AnyByteWait(const AnyByteWait&) = delete;
  AnyByteWait& operator=(const AnyByteWait&) = delete;

  Result<std::optional<int>> wait(const Deadline& deadline, const std::filesystem::path& path) {
    NotifyPool::Watcher watcher = NotifyPool::lend(m_file);
    auto outcome = look_and_wait(deadline, path, watcher.notify);
    NotifyPool::give_back(std::move(watcher));
    return outcome;
  }

private:
  /// The loop: look (the bytes, when an event or the clock says so), then
  /// wait until the next event or the next look.
  Result<std::optional<int>> look_and_wait(const Deadline& deadline, const std::filesystem::path& path,
                                           const FileHandle& notify) {
    // At once first: a byte freed before the watch began sent no event.
    bool closed = false;
    auto next = std::chrono::steady_clock::now();
    while (true) {
      const auto now = std::chrono::steady_clock::now();
      if (closed || now >= next) {
        if (const auto won = try_all()) {
          return std::optional<int>(*won);
        }
        // The events are read after the try, off a hand-off's way (the next
        // lend reads those of a try that won): one that came between the
        // try and the read is seen at the look k_settle later.
        if (closed && notify.valid()) {
          NotifyPool::drain_events(notify.get());
        }
        next = now + (closed ? k_settle : k_rescan);
      }
      if (deadline.passed()) {
        return std::optional<int>();
      }
      const Deadline until(Timeout(std::min<std::chrono::nanoseconds>(
          deadline.left(),
          std::max(next - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration(0)))));
      if (!notify.valid()) {
        if (FASTEN_TRY(wait_blocked_on(until, path))) {
          return std::optional<int>(m_blocked_on);
        }
        closed = false;
        continue;
      }
      closed = wait_for_event(notify.get(), until);
    }
  }

  /// Whether a close event came before `until`; the events are left
  /// queued.
  static bool wait_for_event(int notify, const Deadline& until) {
    pollfd ready{notify, POLLIN, 0};
    const auto left = until.left();
    const auto seconds = std::chrono::floor<std::chrono::seconds>(left);
    const timespec timeout{static_cast<time_t>(seconds.count()), static_cast<long>((left - seconds).count())};
    // 0: the timeout; -1: a signal, and the loop looks at the clock.
    return ppoll(&ready, 1, &timeout, nullptr) > 0;
  }

  /// Without inotify: blocked on one byte until `until`; whether it is held.
  Result<bool> wait_blocked_on(const Deadline& until, const std::filesystem::path& path) {
    const auto outcome = FASTEN_TRY(
        wait_until(m_file, byte_range(F_WRLCK, m_first + m_blocked_on), LockMode::exclusive, until, path));
    return outcome == Outcome::acquired;
  }

  /// Every byte, once each, without waiting.
  std::optional<int> try_all() {
    for (int i = 0; i < m_count; ++i) {
      struct flock range = byte_range(F_WRLCK, m_first + i);
      if (set_lock(m_file, range)) {
        return i;
      }
    }
    return std::nullopt;
  }

  NativeHandle m_file;
  std::int64_t m_first;
  int m_count;
  int m_blocked_on;
};

/// why_not_a_lock from what stat(2) and statfs(2) say of a file.
std::optional<std::string> why_not_a_lock_of(mode_t mode, long file_system) {
  const std::string no_other = ", which no other process can open to lock; use a regular file";
  if (S_ISSOCK(mode)) {
    return "it is a socket" + no_other;
  }
  if (file_system == PIPEFS_MAGIC) {
    return "it is a pipe" + no_other;
  }
  // epoll, eventfd, signalfd, timerfd, inotify and pidfd descriptors have
  // no file type, and most share one inode of the anonymous-inode file system.
  if ((mode & S_IFMT) == 0 || file_system == ANON_INODE_FS_MAGIC) {
    return "it is an anonymous descriptor (epoll, eventfd, signalfd, timerfd, inotify, pidfd, ...)" +
           no_other;
  }
  // /proc/self/status is another file for each process that opens it, and
  // /proc/PID/... goes with the process.
  if (file_system == PROC_SUPER_MAGIC) {
    return std::string("it is on /proc, where each process opens a file of its own; use a regular file");
  }
  return std::nullopt;
}

} // namespace

std::optional<std::string> why_not_a_lock(int descriptor) {
  struct stat info {};
  struct statfs file_system {};
  if (fstat(descriptor, &info) != 0 || fstatfs(descriptor, &file_system) != 0) {
    return std::nullopt;
  }
  return why_not_a_lock_of(info.st_mode, file_system.f_type);
}

std::optional<std::string> why_not_a_lock(const std::filesystem::path& path) {
  struct stat info {};
  struct statfs file_system {};
  if (stat(path.c_str(), &info) != 0 || statfs(path.c_str(), &file_system) != 0) {
    return std::nullopt;
  }
  return why_not_a_lock_of(info.st_mode, file_system.f_type);
}

bool locks_belong_to_open_files() noexcept {
  return FASTEN_LOCK_API_OFD != 0;
}

bool files_have_permission_bits() noexcept {
  return true;
}

namespace platform {

Result<FileId> file_id(NativeHandle descriptor, const std::string& name) {
  struct stat info {};
  if (fstat(descriptor, &info) != 0) {
    return Error(ErrorKind::open, "cannot use descriptor", name, errno);
  }
  return FileId{info.st_dev, info.st_ino};
}

Result<std::optional<FileId>> path_file_id(const std::filesystem::path& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return std::optional<FileId>();
    }
    return Error(ErrorKind::open, "cannot look up lock file", path.string(), errno);
  }
  return std::optional<FileId>(FileId{info.st_dev, info.st_ino});
}

Result<void> check_lockable(NativeHandle descriptor, const std::string& name) {
  if (auto why = why_not_a_lock(descriptor)) {
    return Error(ErrorKind::lock, "cannot be a lock", name, std::move(*why));
  }
  return {};
}

Result<void> check_descriptor(NativeHandle descriptor, const std::string& name) {
  if (fcntl(descriptor, F_GETFL) == -1) {
    return Error(ErrorKind::open, "cannot use descriptor", name, errno);
  }
  return {};
}

} // namespace platform

namespace {

/// How often a lock file that vanishes between open(2) and the O_EXCL create
/// (and is then there again) is tried: without a bound, a user who creates and
/// deletes it in a loop could keep fasten spinning.
constexpr int k_open_tries = 64;

/// A dangling symbolic link makes open(2) fail with ENOENT, while O_CREAT |
/// O_EXCL fails with EEXIST (O_EXCL does not follow links): told apart here,
/// or the two would alternate for ever. fasten never creates a link's target:
/// a link planted in a shared directory must not make it create files
/// elsewhere (flock(1) does, as root).
std::optional<Error> dangling_link(const std::filesystem::path& path) {
  struct stat info {};
  if (lstat(path.c_str(), &info) != 0 || !S_ISLNK(info.st_mode)) {
    return std::nullopt;
  }
  std::string target(static_cast<std::size_t>(info.st_size > 0 ? info.st_size : PATH_MAX), '\0');
  const ssize_t length = readlink(path.c_str(), target.data(), target.size());
  target.resize(length > 0 ? static_cast<std::size_t>(length) : 0);
  return Error(ErrorKind::open, "lock file is a dangling symbolic link", path.string(),
               "its target '" + target + "' does not exist, and fasten does not create it");
}

/// Why an exclusive lock needs write access, for a file that may be read but
/// not written (flock(1)'s `flock -n "$0"` idiom locks a script so): fcntl
/// takes F_WRLCK only on a descriptor open for writing.
std::optional<Error> needs_write_access(int error, LockMode access, const std::filesystem::path& path) {
  if ((error != EACCES && error != EROFS) || access != LockMode::exclusive ||
      ::access(path.c_str(), R_OK) != 0) {
    return std::nullopt;
  }
  return Error(error == EROFS ? ErrorKind::create : ErrorKind::open, "cannot open lock file for writing",
               path.string(),
               system_message(error) +
                   "; an exclusive or write lock needs the file open for writing: take a read lock, or use a "
                   "lock file that you can write");
}

/// As flock(1) tells them apart: out of descriptors or memory is the
/// system's failure (EX_OSERR), a read-only or full file system cannot take
/// the file (EX_CANTCREAT), and the rest mean that LOCK cannot be used.
ErrorKind open_error_kind(int error) {
  switch (error) {
  case ENOMEM:
  case EMFILE:
  case ENFILE:
    return ErrorKind::system;
  case EROFS:
  case ENOSPC:
    return ErrorKind::create;
  default:
    return ErrorKind::open;
  }
}

Error open_error(int error, LockMode access, const std::filesystem::path& path) {
  // A socket cannot be opened at all (ENXIO), nor a file on /proc for
  // writing by others than root: say why no open would help.
  if (auto why = why_not_a_lock(path)) {
    return Error(ErrorKind::lock, "cannot be a lock", path.string(), std::move(*why));
  }
  if (auto reason = needs_write_access(error, access, path)) {
    return *reason;
  }
  if (error == EISDIR) {
    // open(2) refuses a directory for writing; only a shared lock, which
    // needs read access alone, can be taken on one.
    return Error(ErrorKind::lock, "cannot take an exclusive lock on a directory", path.string(),
                 "an exclusive fcntl lock needs a file open for writing, and a directory cannot be opened "
                 "so (flock(1) locks it with flock(2)); lock a file inside it, e.g. " +
                     (path / ".lock").lexically_normal().string());
  }
  if (error == ENOENT) {
    if (auto link = dangling_link(path)) {
      return *link;
    }
  }
  return Error(open_error_kind(error), "cannot open lock file", path.string(), error);
}

/// Creates the lock file, which must not exist: only O_EXCL tells us that it
/// is our file, whose mode we may set. An invalid handle means that someone
/// else created it first.
Result<FileHandle> create_lock_file(const std::filesystem::path& path, int flags,
                                    const OpenOptions& options) {
  const mode_t mode = options.create_mode ? 0600 : 0666;
  FileHandle file(::open(path.c_str(), flags | O_CREAT | O_EXCL, mode));
  if (!file.valid()) {
    if (errno == EEXIST) {
      return FileHandle();
    }
    if (open_error_kind(errno) == ErrorKind::create) {
      return Error(ErrorKind::create, "cannot create lock file", path.string(), errno);
    }
    return open_error(errno, options.access, path);
  }
  if (options.create_mode && fchmod(file.get(), *options.create_mode) != 0) {
    return Error(ErrorKind::open, "cannot set the mode of lock file", path.string(), errno);
  }
  return file;
}

} // namespace

namespace platform {

Result<FileHandle> open_lock_file(const std::filesystem::path& path, const OpenOptions& options) {
  // O_NONBLOCK so that opening a FIFO (or a device) cannot hang; it makes no
  // difference to locking and is cleared again below.
  const int flags =
      O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (options.access == LockMode::exclusive ? O_RDWR : O_RDONLY);
  for (int tries = 0; tries < k_open_tries; ++tries) {
    FileHandle file(::open(path.c_str(), flags));
    if (!file.valid() && errno == ENOENT && options.create) {
      if (auto link = dangling_link(path)) {
        return *link;
      }
      auto created = FASTEN_TRY(create_lock_file(path, flags, options));
      if (!created.valid()) {
        continue; // someone else created it first: open theirs
      }
      file = std::move(created);
    }
    if (!file.valid()) {
      if (errno == EINTR) {
        continue;
      }
      return open_error(errno, options.access, path);
    }
    const int status = fcntl(file.get(), F_GETFL);
    if (status != -1) {
      fcntl(file.get(), F_SETFL, status & ~O_NONBLOCK);
    }
    return file;
  }
  return Error(ErrorKind::open, "cannot open lock file", path.string(),
               "it was created and removed again by others, " + std::to_string(k_open_tries) +
                   " times in a row");
}

} // namespace platform

namespace {

/// fcntl's byte locks.
class FcntlByteLocks final : public ByteLocks {
public:
  Result<Outcome> try_lock(NativeHandle file, std::int64_t byte, LockMode mode,
                           const std::filesystem::path& path) override {
    struct flock range = byte_range(type_of(mode), byte);
    if (set_lock(file, range)) {
      return Outcome::acquired;
    }
    if (is_conflict(errno)) {
      return Outcome::timed_out;
    }
    return lock_error(errno, mode, path);
  }

  Result<Outcome> wait_lock(NativeHandle file, std::int64_t byte, LockMode mode, const Deadline& deadline,
                            const std::filesystem::path& path) override {
    struct flock range = byte_range(type_of(mode), byte);
    if (!deadline.is_forever()) {
      return wait_until(file, range, mode, deadline, path);
    }
    while (fcntl(file, k_set_lock_wait, &range) != 0) {
      if (errno != EINTR) {
        return lock_error(errno, mode, path);
      }
    }
    return Outcome::acquired;
  }

  Result<std::optional<int>> wait_any(NativeHandle file, std::int64_t first, int count,
                                      const Deadline& deadline, const std::filesystem::path& path) override {
    return AnyByteWait(file, first, count).wait(deadline, path);
  }

  void ring(NativeHandle file) override {
    // A classic lock is dropped when its process closes any descriptor of
    // the file: a classic build does not ring (its holders close the file
    // soon after their release, as they end). Only a regular file is opened:
    // a device's open or close may do something.
    struct stat info {};
    if (FASTEN_LOCK_API_OFD == 0 || fstat(file, &info) != 0 || !S_ISREG(info.st_mode)) {
      return;
    }
    const std::string name = "/proc/self/fd/" + std::to_string(file);
    // Closed at once: the close is the ring.
    FileHandle bell(::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  }

  Result<Seen> probe(NativeHandle file, std::int64_t byte, const std::filesystem::path& path) override {
    struct flock range = byte_range(F_WRLCK, byte); // conflicts with every holder
    if (fcntl(file, k_get_lock, &range) != 0) {
      return Error(ErrorKind::lock, "cannot look at the lock", path.string(), errno);
    }
    return range.l_type == F_UNLCK ? Seen::free : range.l_type == F_RDLCK ? Seen::shared : Seen::exclusive;
  }

  Result<void> unlock(NativeHandle file, std::int64_t byte, const std::filesystem::path& path) override {
    return unlock_range(file, byte_range(F_UNLCK, byte), path);
  }

  Result<void> unlock_each(NativeHandle file, std::initializer_list<std::int64_t> bytes,
                           const std::filesystem::path& path) override {
    if (FASTEN_LOCK_API_OFD == 0 || bytes.size() == 0) {
      // Classic locks are the process's: another object of it may hold a
      // byte between them.
      return ByteLocks::unlock_each(file, bytes, path);
    }
    const auto [lowest, highest] = std::minmax_element(bytes.begin(), bytes.end());
    return unlock_range(file, byte_range(F_UNLCK, *lowest, *highest - *lowest + 1), path);
  }

  Result<void> unlock_protocol(NativeHandle file, const std::filesystem::path& path) override {
    // A length of 0 runs to the end of all files: every byte of the
    // protocol, the slots included.
    return unlock_range(file, byte_range(F_UNLCK, protocol::k_turnstile, 0), path);
  }

private:
  static short type_of(LockMode mode) { return mode == LockMode::exclusive ? F_WRLCK : F_RDLCK; }

  static Result<void> unlock_range(NativeHandle file, struct flock range, const std::filesystem::path& path) {
    if (!set_lock(file, range)) {
      return Error(ErrorKind::system, "cannot unlock", path.string(), errno);
    }
    return {};
  }
};

} // namespace

namespace platform {

ByteLocks& byte_locks() {
  static FcntlByteLocks locks;
  return locks;
}

} // namespace platform
} // namespace fasten
