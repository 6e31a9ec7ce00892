#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "run/spawn.h"

namespace fasten::run {

namespace {

constexpr std::array k_forwarded_signals{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

SpawnError exec_error(int error, const std::string& command) {
  if (error == ENOENT || error == ENOTDIR) {
    return {SpawnError::Kind::not_found, "command not found", command, 0};
  }
  return {SpawnError::Kind::not_executable, "cannot execute", command, error};
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

/// Gives the command what it must start with: default dispositions for every
/// signal (an ignored one would stay ignored across exec), an empty signal
/// mask, and the lock's descriptor when it is to keep it. Runs in the child
/// between fork and exec, so it only makes system calls.
void prepare_for_exec(const CommandSpec& command) noexcept {
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  for (int signal = 1; signal < NSIG; ++signal) {
    if (signal != SIGKILL && signal != SIGSTOP) {
      sigaction(signal, &default_action, nullptr); // fails harmlessly for glibc's reserved ones
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

} // namespace

std::vector<std::string> utf8_arguments(int argc, char** argv) {
  return std::vector<std::string>(argv, argv + argc);
}

std::vector<std::string> shell_command(const std::string& script) {
  return {"/bin/sh", "-c", script};
}

void set_environment(const std::string& name, const std::string& value) {
  setenv(name.c_str(), value.c_str(), 1);
}

bool can_exec_in_place() noexcept {
  return true;
}

bool has_inherited_descriptors() noexcept {
  return true;
}

void end_on_termination_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  for (int signal : k_forwarded_signals) {
    ::signal(signal, SIG_DFL);
    sigaddset(&signals, signal);
  }
  sigprocmask(SIG_UNBLOCK, &signals, nullptr);
}

Result<ExitStatus, SpawnError> run_and_wait(const CommandSpec& command) {
  auto argv = c_argv(command);

  // Block what we wait for before the child exists, so that nothing is
  // delivered before sigwaitinfo is ready for it. They stay blocked when this
  // returns: a signal that comes after the command ended must not cut short
  // the release that follows.
  sigset_t watched;
  sigemptyset(&watched);
  for (int signal : k_forwarded_signals) {
    sigaddset(&watched, signal);
  }
  sigaddset(&watched, SIGCHLD);
  sigprocmask(SIG_BLOCK, &watched, nullptr);
  // An inherited SIG_IGN for SIGCHLD would have the kernel reap the child
  // before we can read its status.
  ::signal(SIGCHLD, SIG_DFL);

  // The child reports a failed exec through this pipe; a successful exec
  // closes it (O_CLOEXEC) and the parent reads end-of-file.
  int exec_report[2];
  if (pipe2(exec_report, O_CLOEXEC) != 0) {
    return SpawnError{SpawnError::Kind::system, "cannot start it (pipe)", command.argv[0], errno};
  }
  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child < 0) {
    const int error = errno;
    close(exec_report[0]);
    close(exec_report[1]);
    return SpawnError{SpawnError::Kind::system, "cannot start it (fork)", command.argv[0], error};
  }
  if (child == 0) {
    close(exec_report[0]);
    if (command.die_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      // fasten may have died before prctl took effect; then nobody holds the
      // lock any more and the command must not start.
      if (getppid() != parent) {
        raise(SIGKILL);
      }
    }
    prepare_for_exec(command);
    execvp(argv[0], argv.data());
    const int error = errno;
    (void)!write(exec_report[1], &error, sizeof error);
    _exit(127); // the parent reports the failure; this status is not seen
  }
  close(exec_report[1]);
  int exec_errno = 0;
  ssize_t got;
  do {
    got = read(exec_report[0], &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  close(exec_report[0]);
  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
    return exec_error(exec_errno, command.argv[0]);
  }

  int status = 0;
  while (true) {
    siginfo_t info;
    const int signal = sigwaitinfo(&watched, &info);
    if (signal < 0) {
      continue; // EINTR: a stop and continue, or a signal we do not watch
    }
    if (signal == SIGCHLD) {
      if (waitpid(child, &status, WNOHANG) == child) {
        break;
      }
      continue;
    }
    // A terminal sends Ctrl-C and the like to its whole foreground process
    // group, with si_code SI_KERNEL. The command is in that group and has it
    // already: passing it on would deliver it twice.
    if (info.si_code != SI_KERNEL) {
      kill(child, signal);
    }
  }
  if (WIFSIGNALED(status)) {
    return ExitStatus::killed_by(WTERMSIG(status));
  }
  return ExitStatus::exited(WEXITSTATUS(status));
}

SpawnError exec_in_place(const CommandSpec& command) {
  auto argv = c_argv(command);
  prepare_for_exec(command);
  execvp(argv[0], argv.data());
  return exec_error(errno, command.argv[0]);
}

} // namespace fasten::run
