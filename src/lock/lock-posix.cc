// POSIX locks: fcntl record locks over the whole file.
//
// Which fcntl locks. On Linux these are open-file-description (OFD) locks
// (F_OFD_SETLK/F_OFD_SETLKW): they belong to the open file, not to the
// process, so two LockFile objects in one process exclude each other as two
// processes would, a child that inherits the descriptor keeps the lock, and
// closing some other descriptor of the same file does not drop it. They are in
// the same kernel table as classic fcntl/lockf locks, so they exclude the locks
// that Python fasteners, lockf(3) and fcntl(2) users take on the same file.
// Built with -Dlock_api=posix, the classic F_SETLK/F_SETLKW calls are used
// instead, as on macOS and the BSDs.
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
//  - The timer signal (k_timer_signal) gets a handler that does nothing,
//    installed without SA_RESTART so the wait returns EINTR. The thread
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
// The uncontended case costs one fcntl: every acquire first tries without
// waiting, and only a conflict with a timeout sets up the timer.

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "lock/lock-platform.h"

namespace fasten {

void FileHandle::reset(NativeHandle handle) noexcept {
  if (m_handle != k_invalid_handle) {
    // Not retried on EINTR: on Linux the descriptor is closed even then.
    ::close(m_handle);
  }
  m_handle = handle;
}

namespace {

#if FASTEN_LOCK_API_OFD
constexpr int k_set_lock = F_OFD_SETLK;
constexpr int k_set_lock_wait = F_OFD_SETLKW;
#else
constexpr int k_set_lock = F_SETLK;
constexpr int k_set_lock_wait = F_SETLKW;
#endif

constexpr std::chrono::milliseconds k_refire{1};

int timer_signal() {
  return SIGRTMIN + 3;
}

extern "C" void on_timer_signal(int) {
}

struct flock whole_file(short type) {
  struct flock range {};
  range.l_type = type;
  range.l_whence = SEEK_SET;
  range.l_start = 0;
  range.l_len = 0; // to the end of the file, however long it grows
  range.l_pid = 0; // must be 0 for OFD locks
  return range;
}

bool is_conflict(int error) {
  return error == EAGAIN || error == EACCES;
}

Error lock_error(int error, LockMode mode, const std::filesystem::path& path) {
  if (error == EBADF && mode == LockMode::exclusive) {
    return Error(ErrorKind::lock, "cannot take an exclusive lock on a file not open for writing",
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

  void arm(const timespec& deadline) {
    itimerspec spec{};
    spec.it_value = deadline;
    spec.it_interval.tv_nsec = std::chrono::nanoseconds(k_refire).count();
    timer_settime(m_timer, TIMER_ABSTIME, &spec, nullptr);
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

timespec monotonic_now() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now;
}

timespec add(timespec t, std::chrono::nanoseconds d) {
  constexpr long k_ns_per_s = 1'000'000'000;
  const auto total = static_cast<long long>(t.tv_nsec) + d.count() % k_ns_per_s;
  t.tv_sec += static_cast<time_t>(d.count() / k_ns_per_s + total / k_ns_per_s);
  t.tv_nsec = static_cast<long>(total % k_ns_per_s);
  return t;
}

bool reached(const timespec& now, const timespec& deadline) {
  return now.tv_sec > deadline.tv_sec || (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec);
}

Result<Outcome> wait_until(NativeHandle file, struct flock range, LockMode mode, const timespec& deadline,
                           const std::filesystem::path& path) {
  thread_local ThreadTimer timer;
  if (!timer.valid()) {
    return Error(ErrorKind::system, "cannot create a timer for the timeout", path.string(),
                 timer.creation_errno());
  }
  // Installed at every timed wait, not once: the program may have set the
  // signal to SIG_IGN (or SIG_DFL, which would kill it) since the last one.
  struct sigaction action {};
  action.sa_handler = on_timer_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0; // no SA_RESTART: the wait must return EINTR
  sigaction(timer_signal(), &action, nullptr);

  sigset_t timer_only;
  sigemptyset(&timer_only);
  sigaddset(&timer_only, timer_signal());
  sigset_t saved;
  timer.arm(deadline);
  pthread_sigmask(SIG_UNBLOCK, &timer_only, &saved);

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
    if (reached(monotonic_now(), deadline)) {
      break;
    }
  }

  timer.disarm();
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  return outcome;
}

} // namespace

bool locks_belong_to_open_files() noexcept { return FASTEN_LOCK_API_OFD != 0; }

namespace platform {

Result<void> check_descriptor(NativeHandle descriptor, const std::string& name) {
  if (fcntl(descriptor, F_GETFL) == -1) {
    return Error(ErrorKind::open, "cannot use descriptor", name, errno);
  }
  return {};
}

Result<FileHandle> open_lock_file(const std::filesystem::path& path, const OpenOptions& options) {
  // O_NONBLOCK so that opening a FIFO (or a device) cannot hang; it makes no
  // difference to locking and is cleared again below.
  const int flags =
      O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (options.access == LockMode::exclusive ? O_RDWR : O_RDONLY);
  while (true) {
    FileHandle file(::open(path.c_str(), flags));
    if (!file.valid() && errno == ENOENT && options.create) {
      // Create it, but never open with O_CREAT alone: only O_EXCL tells us
      // that it is our file, whose mode we may set.
      const mode_t mode = options.create_mode ? 0600 : 0666;
      file.reset(::open(path.c_str(), flags | O_CREAT | O_EXCL, mode));
      if (!file.valid() && errno == EEXIST) {
        continue; // someone else created it first: open theirs
      }
      if (file.valid() && options.create_mode && fchmod(file.get(), *options.create_mode) != 0) {
        return Error(ErrorKind::open, "cannot set the mode of lock file", path.string(), errno);
      }
    }
    if (!file.valid()) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EISDIR) {
        // open(2) refuses a directory for writing; only a shared lock, which
        // needs read access alone, can be taken on one.
        return Error(ErrorKind::lock, "cannot take an exclusive lock on a directory", path.string());
      }
      return Error(ErrorKind::open, "cannot open lock file", path.string(), errno);
    }
    const int status = fcntl(file.get(), F_GETFL);
    if (status != -1) {
      fcntl(file.get(), F_SETFL, status & ~O_NONBLOCK);
    }
    return file;
  }
}

Result<Outcome> lock(NativeHandle file, LockMode mode, Timeout timeout, const std::filesystem::path& path) {
  struct flock range = whole_file(mode == LockMode::exclusive ? F_WRLCK : F_RDLCK);
  // Take the start time before the first try, so the try counts against the
  // timeout.
  const timespec start = monotonic_now();
  while (true) {
    if (fcntl(file, k_set_lock, &range) == 0) {
      return Outcome::acquired;
    }
    if (is_conflict(errno)) {
      break;
    }
    if (errno != EINTR) {
      return lock_error(errno, mode, path);
    }
  }
  if (timeout && timeout->count() <= 0) {
    return Outcome::timed_out;
  }
  if (timeout) {
    return wait_until(file, range, mode, add(start, *timeout), path);
  }
  while (fcntl(file, k_set_lock_wait, &range) != 0) {
    if (errno != EINTR) {
      return lock_error(errno, mode, path);
    }
  }
  return Outcome::acquired;
}

Result<void> unlock(NativeHandle file, const std::filesystem::path& path) {
  struct flock range = whole_file(F_UNLCK);
  while (fcntl(file, k_set_lock, &range) != 0) {
    if (errno != EINTR) {
      return Error(ErrorKind::system, "cannot unlock", path.string(), errno);
    }
  }
  return {};
}

} // namespace platform
} // namespace fasten
