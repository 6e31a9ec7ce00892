#pragma once

#include "cli/failure.h"
#include "cli/options.h"

namespace fasten::cli {

/// Takes the lock, runs the command, releases the lock. Returns the status to
/// exit with, or ends fasten itself by the signal that killed the command.
int run_lock_command(const LockOptions& options);

} // namespace fasten::cli
