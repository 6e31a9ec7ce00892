// Running the command on Linux: vfork and exec, then one poll that waits on
// the command's end, the signals passed on and a stop request.
//
// Linux, not POSIX: the signals arrive through a signalfd, a stop request
// through an eventfd, and a command that must not outlive fasten runs under
// a keeper (keeper-linux.h: a child subreaper told of fasten's death by
// prctl(PR_SET_PDEATHSIG)). The steps are one function each: start_child
// (with exec_child, its side of vfork) or start_kept_child, then
// RunningCommand::wait, the loop, which hands each event to stop,
// kill_when_due, take_signals or pass_on.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <string_view>
#include <thread>

#include "lock/wakeup-linux.h"
#include "run/dispositions-linux.h"
#include "run/keeper-linux.h"
#include "run/spawn.h"

namespace fasten::run {

namespace {

constexpr std::array k_forwarded_signals{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

/// The other signals whose default action ends a process and that others
/// send (not those of fasten's own faults: SIGSEGV, SIGBUS, SIGILL, SIGFPE,
/// SIGABRT, SIGTRAP, SIGSYS), besides the real-time ones. Left at their
/// default while the command runs, one would end fasten and have it report
/// an end of the command that has not happened, while the command runs on
/// with the lock: they are passed on as well, whatever sent them.
constexpr std::array k_also_passed_on{SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU,
                                      SIGXFSZ, SIGIO,     SIGPWR,  SIGSTKFLT};

/// Those of k_also_passed_on and the real-time signals that are at their
/// default now (not ignored, and without a handler: a lock wait's timer
/// signal has one only while it waits), added to `set`.
void add_others_at_default(sigset_t& set) {
  const Dispositions now = current_dispositions();
  const auto at_default = [&](int signal) {
    return sigismember(&now.ignored, signal) != 1 && sigismember(&now.caught, signal) != 1;
  };
  for (int signal : k_also_passed_on) {
    if (at_default(signal)) {
      sigaddset(&set, signal);
    }
  }
  for (int signal = SIGRTMIN; signal <= SIGRTMAX; ++signal) {
    if (at_default(signal)) {
      sigaddset(&set, signal);
    }
  }
}

bool is_forwarded(int signal) {
  return std::find(k_forwarded_signals.begin(), k_forwarded_signals.end(), signal) !=
         k_forwarded_signals.end();
}

/// The file that execvp ran for `command`: the command itself when it has a
/// slash, else the first file of that name on PATH; empty when there is none.
std::string file_of_command(const std::string& command) {
  if (command.find('/') != std::string::npos) {
    return command;
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/bin:/usr/bin";
  while (true) {
    const auto colon = dirs.find(':');
    const std::string dir(dirs.substr(0, colon));
    const std::string file = (dir.empty() ? "." : dir) + "/" + command;
    if (access(file.c_str(), F_OK) == 0) {
      return file;
    }
    if (colon == std::string_view::npos) {
      return {};
    }
    dirs.remove_prefix(colon + 1);
  }
}

/// The interpreter that a script's `#!` line names, as the kernel reads it
/// (up to the first blank); empty when `file` does not start with `#!`.
std::string interpreter_of(const std::string& file) {
  char line[256] = {};
  const FileHandle script(open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!script.valid()) {
    return {};
  }
  const ssize_t got = read(script.get(), line, sizeof line - 1);
  if (got < 2 || line[0] != '#' || line[1] != '!') {
    return {};
  }
  std::string_view rest(line + 2, static_cast<size_t>(got - 2));
  rest.remove_prefix(std::min(rest.find_first_not_of(" \t"), rest.size()));
  return std::string(rest.substr(0, rest.find_first_of(" \t\n")));
}

/// Why execvp failed, in the shell's statuses: 127 for a command that is not
/// there, 126 for one that is there but cannot run. Says what the system's
/// errno leaves out: an empty command, a script whose interpreter is missing,
/// a directory.
Error exec_error(int error, const std::string& command) {
  if (command.empty()) {
    return Error::of_command(ErrorKind::not_found, "''",
                             "the command is empty (an empty word where COMMAND should be)", 0);
  }
  const std::string file = file_of_command(command);
  if (error == ENOENT && !file.empty()) {
    const std::string interpreter = interpreter_of(file);
    if (!interpreter.empty()) {
      // A script saved on Windows: the kernel looks for "/bin/sh\r". The
      // line's controls are escaped where every line is (cli/diagnostics.cc):
      // the \r shows.
      const std::string dos = interpreter.ends_with('\r')
                                  ? ": the script's lines end in \\r\\n (DOS); convert "
                                    "them to \\n (dos2unix)"
                                  : "";
      return Error::of_command(ErrorKind::not_found, command,
                               "its #! interpreter " + interpreter + " was not found" + dos, 0);
    }
  }
  if (error == ENOENT || error == ENOTDIR) {
    // A path is not looked up in PATH: as the shell says, the file is not there.
    const bool path = command.find('/') != std::string::npos;
    const char* what = !path             ? "command not found"
                       : error == ENOENT ? "no such file or directory"
                                         : "a part of its path is not a directory";
    return Error::of_command(ErrorKind::not_found, command, what, 0);
  }
  struct stat info {};
  if (error == EACCES && !file.empty() && stat(file.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    return Error::of_command(ErrorKind::not_executable, command, "is a directory, not a command", 0);
  }
  return Error::of_command(ErrorKind::not_executable, command, "cannot execute", error);
}

std::vector<char*> c_argv(const CommandSpec& command) {
  std::vector<char*> argv;
  argv.reserve(command.argv.size() + 1);
  for (const auto& arg : command.argv) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  return argv;
}

/// The signals fasten inherited ignored, as found the first time it looks:
/// at its start, in end_on_termination_signals. They stay ignored, for fasten
/// and for the command, as they would if the caller had run the command
/// itself: nohup's HUP, a script's background job's INT and QUIT.
const sigset_t& ignored_at_start() {
  static const sigset_t ignored = current_dispositions().ignored;
  return ignored;
}

bool ignored_at_start(int signal) {
  return sigismember(&ignored_at_start(), signal) == 1;
}

/// The signals that fasten ignores of its own accord, whatever it inherited
/// (end_on_termination_signals): it sets no other to SIG_IGN.
constexpr std::array k_ignored_by_fasten{SIGPIPE};

/// Gives the command what it must start with: the signals fasten inherited
/// ignored still ignored and every other one at its default (whatever fasten
/// has since done with SIGCHLD, SIGPIPE and its timer signal), an empty
/// signal mask, and the lock's descriptor when it is to keep it. Runs in the
/// child between fork and exec, so it only makes system calls; `ignored` was
/// looked up before the fork. exec puts every signal that has a handler back
/// to its default and leaves an ignored one ignored, so only two kinds are
/// set here, a system call each while the vforked fasten waits, not every
/// signal: those inherited ignored, which fasten may have given a handler
/// since (the timer signal of -w), and those fasten ignores itself.
void prepare_for_exec(const CommandSpec& command, const sigset_t& ignored) noexcept {
  struct sigaction action {};
  sigemptyset(&action.sa_mask);
  action.sa_handler = SIG_IGN;
  for (int signal = 1; signal < NSIG; ++signal) {
    if (sigismember(&ignored, signal) == 1) {
      sigaction(signal, &action, nullptr);
    }
  }
  action.sa_handler = SIG_DFL;
  for (int signal : k_ignored_by_fasten) {
    if (sigismember(&ignored, signal) != 1) {
      sigaction(signal, &action, nullptr);
    }
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (command.inherit_fd) {
    const int flags = fcntl(*command.inherit_fd, F_GETFD);
    fcntl(*command.inherit_fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
}

using Clock = std::chrono::steady_clock;

int milliseconds_until(Clock::time_point when) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(when - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
}

Error system_error(const char* what, const CommandSpec& command, int error) {
  return Error::of_command(ErrorKind::system, command.argv[0], what, error);
}

/// Blocks the signals that run_and_wait waits for, before the child exists,
/// so that nothing is delivered before the signalfd is there to read it. They
/// stay blocked when it returns: a signal that comes after the command ended
/// must not cut short the release that follows. Those fasten inherited
/// ignored are not watched: blocked, they would be queued instead of
/// discarded; ignored, they are neither passed on nor acted on, and the
/// command has them ignored too.
sigset_t block_watched_signals() {
  sigset_t watched;
  sigemptyset(&watched);
  for (int signal : k_forwarded_signals) {
    if (!ignored_at_start(signal)) {
      sigaddset(&watched, signal);
    }
  }
  add_others_at_default(watched);
  sigaddset(&watched, SIGCHLD);
  sigprocmask(SIG_BLOCK, &watched, nullptr);
  // An inherited SIG_IGN for SIGCHLD would have the kernel reap the child
  // before we can read its status.
  ::signal(SIGCHLD, SIG_DFL);
  return watched;
}

/// The watched signals as a descriptor, which one poll waits on together
/// with a stop request from another thread.
Result<FileHandle> open_signals(const sigset_t& watched, const CommandSpec& command) {
  FileHandle signals(signalfd(-1, &watched, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signals.valid()) {
    return system_error("cannot start it (signalfd)", command, errno);
  }
  return signals;
}

/// The child reports a failed exec through this pipe; a successful exec
/// closes it (O_CLOEXEC) and the parent reads end-of-file.
struct ExecReport {
  FileHandle read_end;
  FileHandle write_end;
};

Result<ExecReport> open_exec_report(const CommandSpec& command) {
  int ends[2];
  if (pipe2(ends, O_CLOEXEC) != 0) {
    return system_error("cannot start it (pipe)", command, errno);
  }
  return ExecReport{FileHandle(ends[0]), FileHandle(ends[1])};
}

/// The errno of the child's failed exec; none once it has exec'd.
std::optional<int> read_exec_report(const FileHandle& read_end) {
  int exec_errno = 0;
  ssize_t got;
  do {
    got = read(read_end.get(), &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  if (got != static_cast<ssize_t>(sizeof exec_errno)) {
    return std::nullopt;
  }
  return exec_errno;
}

/// The child, from vfork to exec. It borrows fasten's memory, so it only makes
/// system calls, writes nothing of the parent's (not even a FileHandle: one
/// reset here would be closed in the parent's eyes too), and never returns.
[[noreturn]] void exec_child(const CommandSpec& command, char* const* argv, const sigset_t& ignored,
                             int report_read, int report_write) noexcept {
  close(report_read);
  if (command.own_process_group) {
    setpgid(0, 0);
  }
  prepare_for_exec(command, ignored);
  execvp(argv[0], argv);
  const int error = errno;
  (void)!write(report_write, &error, sizeof error);
  _exit(127); // the parent reports the failure; this status is not seen
}

/// A pidfd for process `pid`, or -1 (a kernel before 5.3).
int open_pidfd(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

/// The processes run_and_wait watches: the one it waits for (the command, or
/// the keeper that ends as the command ends) and the command, which signals
/// are passed on to.
struct Started {
  pid_t waited;
  pid_t command;
};

/// Starts the command as fasten's own child: its pid once it has exec'd, or
/// why it could not.
Result<Started> start_child(const CommandSpec& command, const sigset_t& ignored) {
  auto argv = c_argv(command);
  auto report = FASTEN_TRY(open_exec_report(command));
  // vfork: the child borrows fasten's memory until it execs, instead of
  // copying its page tables, which made fork the largest cost of starting the
  // command.
  const pid_t child = vfork();
  if (child < 0) {
    return system_error("cannot start it (vfork)", command, errno);
  }
  if (child == 0) {
    exec_child(command, argv.data(), ignored, report.read_end.get(), report.write_end.get());
  }
  if (command.own_process_group) {
    // Also here, so that the group exists before the parent signals it,
    // whichever of the two runs first.
    setpgid(child, child);
  }
  report.write_end.reset();
  const auto exec_errno = read_exec_report(report.read_end);
  if (exec_errno) {
    while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
    return exec_error(*exec_errno, command.argv[0]);
  }
  return Started{child, child};
}

/// What the keeper's child needs to become the command.
struct KeptCommand {
  const CommandSpec* command;
  char* const* argv;
  const sigset_t* ignored;
  /// The process group to join: fasten's, so that the command stays in the
  /// terminal's foreground group; 0 for a group of its own.
  pid_t group;
  int report_write;
};

/// The keeper's child, from vfork to exec: reports its pid, then execs the
/// command or reports why not. It borrows the keeper's memory: system calls
/// only, and nothing written but its own locals.
[[noreturn]] void exec_kept_command(const void* context) noexcept {
  const auto& kept = *static_cast<const KeptCommand*>(context);
  setpgid(0, kept.group);
  // Dies with the keeper too, should anyone SIGKILL that.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  const int pid[2] = {k_report_pid, getpid()};
  (void)!write(kept.report_write, pid, sizeof pid);
  prepare_for_exec(*kept.command, *kept.ignored);
  execvp(kept.argv[0], kept.argv);
  const int error[2] = {k_report_exec_error, errno};
  (void)!write(kept.report_write, error, sizeof error);
  _exit(127);
}

/// Reads what the keeper and its child report: the command's pid once it has
/// exec'd, or why it could not start.
Result<pid_t> read_keeper_report(const FileHandle& read_end, const CommandSpec& command) {
  pid_t started = 0;
  int message[2];
  while (true) {
    ssize_t got;
    do {
      got = read(read_end.get(), message, sizeof message);
    } while (got < 0 && errno == EINTR);
    if (got != static_cast<ssize_t>(sizeof message)) {
      break;
    }
    if (message[0] == k_report_pid) {
      started = message[1];
    } else if (message[0] == k_report_exec_error) {
      return exec_error(message[1], command.argv[0]);
    } else {
      return system_error("cannot start it (fork)", command, message[1]);
    }
  }
  if (started == 0) {
    return system_error("cannot start it (the keeper ended)", command, ECHILD);
  }
  return started;
}

/// Starts the command under a keeper (keeper-linux.h) that kills all it
/// started if fasten dies: for a command that does not hold the lock itself.
Result<Started> start_kept_child(const CommandSpec& command, const sigset_t& ignored) {
  auto argv = c_argv(command);
  auto report = FASTEN_TRY(open_exec_report(command));
  const KeptCommand kept{&command, argv.data(), &ignored, command.own_process_group ? 0 : getpgid(0),
                         report.write_end.get()};
  const pid_t parent = getpid();
  // fork, not vfork: the keeper lives on beside fasten.
  const pid_t keeper = fork();
  if (keeper < 0) {
    return system_error("cannot start it (fork)", command, errno);
  }
  if (keeper == 0) {
    close(report.read_end.get());
    keep(parent, command.keeper_keeps.value_or(-1), report.write_end.get(), exec_kept_command, &kept,
         {command.stop != nullptr ? command.stop->stop_by() : nullptr, command.grace.count()});
  }
  report.write_end.reset();
  const auto started = read_keeper_report(report.read_end, command);
  if (!started) {
    while (waitpid(keeper, nullptr, 0) < 0 && errno == EINTR) {
    }
    return started.error();
  }
  // The command made its process group before it reported its pid.
  return Started{keeper, started.value()};
}

/// After the command itself has ended on a stop: what it left in its group
/// gets the rest of the grace period, then SIGKILL. There is nothing to wait
/// on for processes that are not our children, so this looks every 20 ms.
void finish_group(pid_t group, Clock::time_point kill_at) {
  while (kill(-group, 0) == 0) {
    if (Clock::now() >= kill_at) {
      kill(-group, SIGKILL);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

/// The command from its start to its end, and what happens to it meanwhile:
/// the signals passed on, the stop with its grace period.
class RunningCommand {
public:
  RunningCommand(const CommandSpec& command, Started started)
      : m_command(command), m_child(started.waited), m_command_pid(started.command),
        m_target(command.own_process_group ? -started.command : started.command),
        m_command_handle(started.waited != started.command ? open_pidfd(started.command) : -1) {}

  /// Returns once the command has ended, having passed signals on and
  /// stopped it if requested; waiting costs no CPU.
  void wait(const FileHandle& signals);
  /// After a stop: what the command left in its group gets the rest of the
  /// grace period.
  void finish_stop() const;
  [[nodiscard]] Ended ended() const;

private:
  bool killing() const noexcept { return m_kill_at != Clock::time_point::max(); }
  void stop();
  void kill_when_due();
  bool take_signals(const FileHandle& signals);
  void pass_on(const signalfd_siginfo& info) const;
  void signal_command(int signal) const;

  const CommandSpec& m_command;
  /// What fasten waits for: the command, or its keeper, which ends as it ends.
  pid_t m_child;
  pid_t m_command_pid;
  /// Where a stop, and signals a terminal sent, go: the command's own group,
  /// or the command alone.
  pid_t m_target;
  /// The command as a pidfd, where the keeper and not fasten reaps it: a
  /// signal sent through it never reaches another process that got its pid
  /// once it was reaped. Invalid where fasten reaps the command itself.
  FileHandle m_command_handle;
  int m_status = 0;
  bool m_stopped = false;
  /// When SIGKILL follows a stop; max() while there is none to follow.
  Clock::time_point m_kill_at = Clock::time_point::max();
};

void RunningCommand::wait(const FileHandle& signals) {
  while (true) {
    // Once the stop is under way its eventfd stays readable: poll no longer
    // looks at it (a negative descriptor), or it would return at once and
    // spin until the command ends.
    const bool watch_stop = m_command.stop != nullptr && !m_stopped;
    pollfd ready[2] = {{signals.get(), POLLIN, 0}, {watch_stop ? m_command.stop->handle() : -1, POLLIN, 0}};
    if (poll(ready, 2, killing() ? milliseconds_until(m_kill_at) : -1) < 0) {
      continue; // EINTR: a stop and continue
    }
    kill_when_due();
    if ((ready[1].revents & POLLIN) != 0 && !m_stopped) {
      stop();
    }
    if ((ready[0].revents & POLLIN) != 0 && take_signals(signals)) {
      return;
    }
  }
}

/// Sends `signal` to the command alone.
void RunningCommand::signal_command(int signal) const {
  if (m_command_handle.valid()) {
    // By number: glibc 2.36's <sys/pidfd.h> declares it without C linkage.
    syscall(SYS_pidfd_send_signal, m_command_handle.get(), signal, nullptr, 0);
  } else {
    kill(m_command_pid, signal);
  }
}

void RunningCommand::stop() {
  m_stopped = true;
  if (m_child != m_command_pid) {
    // The keeper kills what the command leaves once it has ended, whatever
    // group or session it is in: the lock is lost.
    kill(m_child, k_keeper_end_all_signal);
  }
  kill(m_target, SIGTERM);
  m_kill_at = Clock::now() + m_command.grace;
}

void RunningCommand::kill_when_due() {
  if (killing() && Clock::now() >= m_kill_at) {
    kill(m_target, SIGKILL);
    m_kill_at = Clock::time_point::max();
  }
}

/// Reads every signal queued and passes on those to pass on; whether the
/// command has ended.
bool RunningCommand::take_signals(const FileHandle& signals) {
  bool ended = false;
  signalfd_siginfo info;
  while (read(signals.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    if (static_cast<int>(info.ssi_signo) == SIGCHLD) {
      ended = ended || waitpid(m_child, &m_status, WNOHANG) == m_child;
    } else {
      pass_on(info);
    }
  }
  return ended;
}

void RunningCommand::pass_on(const signalfd_siginfo& info) const {
  const int signal = static_cast<int>(info.ssi_signo);
  if (!is_forwarded(signal)) {
    signal_command(signal); // no terminal sends these to a group
    return;
  }
  // A terminal sends Ctrl-C and the like to its whole foreground process
  // group, with si_code SI_KERNEL. A command in that group has it already:
  // passing it on would deliver it twice. A command in a group of its own
  // does not: it goes to that group, as the terminal would.
  if (info.ssi_code != SI_KERNEL) {
    signal_command(signal);
  } else if (m_command.own_process_group) {
    kill(m_target, signal);
  }
}

void RunningCommand::finish_stop() const {
  if (m_stopped && m_command.own_process_group && killing()) {
    finish_group(m_command_pid, m_kill_at);
  }
}

Ended RunningCommand::ended() const {
  const auto status = WIFSIGNALED(m_status) ? ExitStatus::killed_by(WTERMSIG(m_status))
                                            : ExitStatus::exited(WEXITSTATUS(m_status));
  return Ended{status, m_stopped};
}

} // namespace

std::vector<std::string> shell_command(const std::string& script) {
  return {"/bin/sh", "-c", script};
}

void set_environment(const std::string& name, const std::string& value) {
  setenv(name.c_str(), value.c_str(), 1);
}

void unset_environment(const std::string& name) {
  unsetenv(name.c_str());
}

bool can_exec_in_place() noexcept {
  return true;
}

bool has_inherited_descriptors() noexcept {
  return true;
}

struct StopRequest::Waker {
  Wakeup wakeup;
};

StopRequest::StopRequest() : m_waker(std::make_unique<Waker>()) {
}

void StopRequest::share_with_keeper() noexcept {
  if (m_stop_by != nullptr) {
    return;
  }
  // Shared with the keeper that fork makes later: one page, zeroed.
  void* page = mmap(nullptr, sizeof(StopBy), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page != MAP_FAILED) {
    m_stop_by = new (page) StopBy;
  }
}

StopRequest::~StopRequest() {
  if (m_stop_by != nullptr) {
    m_stop_by->~StopBy();
    munmap(m_stop_by, sizeof(StopBy));
  }
}

void StopRequest::request() noexcept {
  if (m_stop_by != nullptr) {
    m_stop_by->fasten_stops = true;
  }
  m_waker->wakeup.wake();
}

NativeHandle StopRequest::handle() const noexcept {
  return m_waker->wakeup.valid() ? m_waker->wakeup.descriptor() : k_invalid_handle;
}

int StopRequest::error() const noexcept {
  return m_waker->wakeup.error();
}

void end_on_termination_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  for (int signal : k_forwarded_signals) {
    ::signal(signal, ignored_at_start(signal) ? SIG_IGN : SIG_DFL);
    sigaddset(&signals, signal);
  }
  sigprocmask(SIG_UNBLOCK, &signals, nullptr);
  // fasten's own lines must never end it: a reader of its stderr that went
  // away (`2>&1 | head -n1`) would otherwise kill it before the command
  // starts, or take the command's status from it. A failed write of its
  // own output is a status of its own (74). The command still starts with
  // SIGPIPE at its default, unless fasten inherited it ignored: the
  // dispositions it starts with were noted above.
  for (int signal : k_ignored_by_fasten) {
    ::signal(signal, SIG_IGN);
  }
}

Result<Ended> run_and_wait(const CommandSpec& command) {
  const sigset_t& ignored = ignored_at_start();
  const sigset_t watched = block_watched_signals();
  if (command.stop != nullptr && command.stop->handle() == k_invalid_handle) {
    return system_error("cannot start it (eventfd)", command, command.stop->error());
  }
  auto signals = FASTEN_TRY(open_signals(watched, command));
  // A command that does not hold the lock itself must not outlive fasten,
  // nor anything it started.
  const auto child = FASTEN_TRY(command.die_with_parent ? start_kept_child(command, ignored)
                                                        : start_child(command, ignored));
  RunningCommand running(command, child);
  running.wait(signals);
  signals.reset();
  running.finish_stop();
  return running.ended();
}

Error exec_in_place(const CommandSpec& command) {
  auto argv = c_argv(command);
  prepare_for_exec(command, ignored_at_start());
  execvp(argv[0], argv.data());
  return exec_error(errno, command.argv[0]);
}

} // namespace fasten::run
