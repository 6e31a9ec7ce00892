#include "run/keeper-linux.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "lock/protocol.h"

namespace fasten::run {

namespace {

/// What fasten's death sends the keeper. Blocked, like every signal in the
/// keeper, and taken with sigwaitinfo: a signal somebody else sends it is
/// told apart by asking whether fasten is still its parent.
constexpr int k_death_signal = SIGTERM;

/// The parent of process `pid` (digits) from /proc/PID/stat, or -1 when it
/// is gone. Without allocation: this runs in the keeper.
pid_t parent_of(const char* pid) noexcept {
  char path[48] = "/proc/";
  if (std::strlen(pid) > 20) {
    return -1;
  }
  std::strcat(path, pid);
  std::strcat(path, "/stat");
  const int file = open(path, O_RDONLY | O_CLOEXEC);
  if (file < 0) {
    return -1;
  }
  char stat[512];
  const ssize_t got = read(file, stat, sizeof stat - 1);
  close(file);
  if (got <= 0) {
    return -1;
  }
  stat[got] = '\0';
  // "pid (comm) state ppid ...": comm may hold anything, ')' included.
  const char* end_of_name = std::strrchr(stat, ')');
  if (end_of_name == nullptr || std::strlen(end_of_name) < 5) {
    return -1;
  }
  return static_cast<pid_t>(std::strtol(end_of_name + 4, nullptr, 10));
}

bool all_digits(const char* name) noexcept {
  if (*name == '\0') {
    return false;
  }
  for (; *name != '\0'; ++name) {
    if (*name < '0' || *name > '9') {
      return false;
    }
  }
  return true;
}

/// SIGKILL to every child of `self` that /proc lists; how many it found.
/// (The kernel's own list, /proc/PID/task/TID/children, is not in every
/// kernel: this reads each process's parent instead.)
int kill_children(pid_t self) noexcept {
  const int proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (proc < 0) {
    return 0;
  }
  int found = 0;
  alignas(8) char entries[8192];
  long got;
  while ((got = syscall(SYS_getdents64, proc, entries, sizeof entries)) > 0) {
    for (long at = 0; at < got;) {
      const auto* entry = reinterpret_cast<const dirent64*>(entries + at);
      at += entry->d_reclen;
      if (all_digits(entry->d_name) && parent_of(entry->d_name) == self) {
        kill(static_cast<pid_t>(std::strtol(entry->d_name, nullptr, 10)), SIGKILL);
        ++found;
      }
    }
  }
  close(proc);
  return found;
}

/// Every descendant is killed. As a subreaper the keeper becomes the parent
/// of each orphan, so killing its children, round after round, reaches them
/// all; a child forked meanwhile is found next round.
void kill_descendants(pid_t self) noexcept {
  while (true) {
    const int killed = kill_children(self);
    int status;
    if (waitpid(-1, &status, killed > 0 ? 0 : WNOHANG) < 0 && errno == ECHILD) {
      return;
    }
  }
}

/// Closes every descriptor but `kept` (-1: none).
void close_all_but(int kept) noexcept {
  const bool closed = kept < 0 ? close_range(0, ~0U, 0) == 0
                               : (kept == 0 || close_range(0, static_cast<unsigned>(kept) - 1, 0) == 0) &&
                                     close_range(static_cast<unsigned>(kept) + 1, ~0U, 0) == 0;
  if (closed) {
    return;
  }
  // Kernels before 5.9 have no close_range.
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  for (rlim_t descriptor = 0; descriptor < limit.rlim_cur && descriptor < 1 << 20; ++descriptor) {
    if (static_cast<int>(descriptor) != kept) {
      close(static_cast<int>(descriptor));
    }
  }
}

/// Ends the keeper as the command ended: the same exit code, or death by the
/// same signal (without a core dump of its own).
[[noreturn]] void end_like(int status) noexcept {
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    const rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigaction(signal, &action, nullptr);
    sigset_t just;
    sigemptyset(&just);
    sigaddset(&just, signal);
    kill(getpid(), signal);
    sigprocmask(SIG_UNBLOCK, &just, nullptr);
    _exit(128 + signal);
  }
  _exit(WEXITSTATUS(status));
}

void report(int report_write, int kind, int value) noexcept {
  const int message[2] = {kind, value};
  (void)!write(report_write, message, sizeof message);
}

/// Makes this forked process the keeper of `fasten`'s command: every signal
/// blocked (it takes them with sigwaitinfo), a process group of its own (a
/// signal to fasten's group, Ctrl-C or kill -KILL -PGID, does not reach it),
/// the parent of every orphan below it, and told of fasten's death. Ends
/// at once if fasten died before that last took effect.
void become_keeper(pid_t fasten) noexcept {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  setpgid(0, 0);
  prctl(PR_SET_NAME, protocol::k_keeper_name);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  prctl(PR_SET_PDEATHSIG, k_death_signal);
  if (getppid() != fasten) {
    _exit(128 + SIGKILL); // fasten died before prctl took effect: start nothing
  }
}

std::int64_t boot_now() noexcept {
  timespec now{};
  clock_gettime(CLOCK_BOOTTIME, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

/// The keeper's own stop of a command whose lock fasten did not renew in
/// time (keeper-linux.h, KeeperDeadline): when it is due, and whether it began.
struct DeadlineWatch {
  KeeperDeadline deadline;
  pid_t command;
  std::int64_t kill_at = -1;  // once SIGTERM went: when SIGKILL goes

  /// When the keeper must look next (CLOCK_BOOTTIME ns), or -1: never.
  std::int64_t next() const noexcept {
    if (deadline.stop_by == nullptr || kill_at == 0) {
      return -1;
    }
    if (kill_at > 0) {
      return kill_at;
    }
    const std::int64_t at = deadline.stop_by->earliest();
    return at == 0 || deadline.stop_by->fasten_stops.load() ? -1 : at + k_keeper_lag_ns;
  }

  /// Sends what is due; whether the command is being stopped.
  bool act(std::int64_t now) noexcept {
    const std::int64_t due = next();
    if (due < 0 || now < due) {
      return kill_at >= 0;
    }
    // The command's process group, as fasten stops it, where it has one.
    const pid_t target = getpgid(command) == command ? -command : command;
    if (kill_at < 0) {
      // The shared page tells fasten why its command ended.
      deadline.stop_by->keeper_stopped = true;
      kill(target, SIGTERM);
      kill_at = now + deadline.grace_ns;
    } else {
      kill(target, SIGKILL);
      kill_at = 0;
    }
    return true;
  }
};

/// Waits for one of `wanted`, no later than `due` (CLOCK_BOOTTIME ns; -1:
/// no limit, and at most a second ahead, since fasten may move the
/// deadline nearer); false when none came.
bool wait_for(const sigset_t& wanted, siginfo_t& info, std::int64_t due) noexcept {
  if (due < 0) {
    return sigwaitinfo(&wanted, &info) >= 0;
  }
  const std::int64_t left = due - boot_now();
  const std::int64_t wait = left < 1'000'000 ? 1'000'000 : left > 1'000'000'000 ? 1'000'000'000 : left;
  const timespec timeout{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
  return sigtimedwait(&wanted, &info, &timeout) >= 0;
}

/// Reaps the command and the orphans it leaves until the command ends, then
/// ends like it; kills every descendant first when fasten dies, or when
/// fasten asked for it (k_keeper_end_all_signal) before the command ended,
/// or when the keeper stopped the command past its deadline.
[[noreturn]] void watch(pid_t fasten, pid_t command, KeeperDeadline deadline) noexcept {
  sigset_t wanted;
  sigemptyset(&wanted);
  sigaddset(&wanted, SIGCHLD);
  sigaddset(&wanted, k_death_signal);
  sigaddset(&wanted, k_keeper_end_all_signal);
  bool end_all = false;
  DeadlineWatch stopping{deadline, command};
  while (true) {
    siginfo_t info{};
    const bool got = wait_for(wanted, info, stopping.next());
    if (getppid() != fasten) {
      kill_descendants(getpid());
      _exit(128 + SIGKILL);
    }
    end_all = stopping.act(boot_now()) || end_all;
    if (!got) {
      continue;
    }
    if (info.si_signo == k_keeper_end_all_signal && info.si_pid == fasten) {
      end_all = true;
    }
    int status;
    pid_t ended;
    // Orphans of the command's are reaped too; SIGCHLDs may have merged.
    while ((ended = waitpid(-1, &status, WNOHANG)) > 0) {
      if (ended == command) {
        if (end_all) {
          kill_descendants(getpid());
        }
        end_like(status);
      }
    }
  }
}

} // namespace

void keep(pid_t fasten, int lock, int report_write, StartCommand start, const void* context,
          KeeperDeadline deadline) noexcept {
  become_keeper(fasten);
  // vfork: the command's process borrows the keeper's memory until it execs
  // (`start` only makes system calls), instead of copying the page tables
  // of the whole forked fasten; the keeper waits meanwhile.
  const pid_t command = vfork();
  if (command < 0) {
    report(report_write, k_report_fork_error, errno);
    _exit(127);
  }
  if (command == 0) {
    start(context);
  }
  // Nothing else of fasten's stays open here: a copy of another descriptor
  // would keep a pipe's reader waiting, or show the keeper as a holder.
  close_all_but(lock);
  watch(fasten, command, deadline);
}

} // namespace fasten::run
