#include "run/exit-status.h"

#include <cstdio>
#include <cstdlib>

namespace fasten::run {

// Windows has no signals to end a process by: a command always exits with a
// code (one that Ctrl-C ended has 0xC000013A, STATUS_CONTROL_C_EXIT), and
// fasten exits with the same.
void exit_like(ExitStatus status) {
  std::fflush(nullptr);
  std::exit(status.shell_status());
}

} // namespace fasten::run
