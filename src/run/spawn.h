#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lock/result.h"
#include "run/exit-status.h"

namespace fasten::run {

/// What to run, and what it keeps of fasten.
struct CommandSpec {
  /// argv[0] is looked up in PATH, as the shell does.
  std::vector<std::string> argv;
  /// A descriptor the command inherits (the lock's), or none.
  std::optional<int> inherit_fd;
  /// Kill the command if fasten dies while it runs. For a command that does
  /// not inherit the lock: it must not go on running once nobody holds it.
  bool die_with_parent = false;
};

/// Why a command could not be started.
struct SpawnError {
  enum class Kind { not_found, not_executable, system };
  Kind kind;
  std::string what;
  std::string subject;
  int sys_errno;

  /// "<subject>: <what>: <system error>", one line.
  std::string message() const;
};

/// While fasten waits for the lock, HUP, INT, QUIT, TERM, USR1 and USR2 end it
/// at once by their default action (the shell sees 128 + N), whatever
/// dispositions and mask it inherited, and the command is never started.
void end_on_termination_signals();

/// Starts the command with a clean signal mask and default dispositions, and
/// waits for it to end. HUP, INT, QUIT, TERM, USR1 and USR2 that fasten
/// receives meanwhile are passed on to the command once; those a terminal sent
/// to the whole foreground process group are not, since the command, which is
/// in that group, got them already.
[[nodiscard]] Result<ExitStatus, SpawnError> run_and_wait(const CommandSpec& command);

/// Replaces fasten with the command, which keeps fasten's pid (and the
/// inherited descriptor). Returns only if it could not be started.
[[nodiscard]] SpawnError exec_in_place(const CommandSpec& command);

} // namespace fasten::run
