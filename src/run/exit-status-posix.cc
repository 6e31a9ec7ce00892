#include "run/exit-status.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace fasten::run {

namespace {

bool terminates_without_core(int signal) {
  switch (signal) {
  case SIGHUP:
  case SIGINT:
  case SIGKILL:
  case SIGPIPE:
  case SIGALRM:
  case SIGTERM:
  case SIGUSR1:
  case SIGUSR2:
  case SIGVTALRM:
  case SIGPROF:
  case SIGIO:
  case SIGPWR:
    return true;
  default:
    return signal >= SIGRTMIN && signal <= SIGRTMAX;
  }
}

} // namespace

void exit_like(ExitStatus status) {
  if (status.signaled() && terminates_without_core(status.signal())) {
    std::fflush(nullptr);
    ::signal(status.signal(), SIG_DFL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, status.signal());
    sigprocmask(SIG_UNBLOCK, &only, nullptr);
    ::raise(status.signal());
  }
  std::exit(status.shell_status());
}

} // namespace fasten::run
