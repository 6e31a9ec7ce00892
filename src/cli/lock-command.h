#pragma once

#include <stdexcept>
#include <string>

#include "cli/options.h"

namespace fasten::cli {

/// A failure that ends fasten with `exit_status` after one line on stderr.
/// Thrown anywhere in src/cli, caught once in main.
class Failure : public std::runtime_error {
public:
  Failure(int exit_status, const std::string& message)
      : std::runtime_error(message), m_exit_status(exit_status) {}
  int exit_status() const noexcept { return m_exit_status; }

private:
  int m_exit_status;
};

/// Takes the lock, runs the command, releases the lock. Returns the status to
/// exit with, or ends fasten itself by the signal that killed the command.
int run_lock_command(const LockOptions& options);

} // namespace fasten::cli
