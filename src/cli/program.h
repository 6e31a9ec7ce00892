#pragma once

#include <functional>

#include "cli/options.h"

namespace fasten::cli {

/// What main does in fasten and in fasten-etcd: reads the command line,
/// prints --help, --version and usage errors, and otherwise returns what
/// `act` makes of the options; a Failure, or any exception, becomes one line
/// on stderr and its exit status.
int run_program(int argc, char** argv, const std::function<int(const LockOptions&)>& act);

} // namespace fasten::cli
