#pragma once

#include <stdexcept>
#include <string>

#include "lock/result.h"
#include "run/spawn.h"

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

/// The exit status for an error: 66 cannot open, 73 cannot create, 65 lock
/// refused or misused, 69/76/77 for etcd, 127 and 126 for a command not
/// found or not executable, 71 the system failed.
[[nodiscard]] int exit_status_for(const Error& error);

/// The error's message for stderr, with the path or value it concerns and
/// the detail escaped as `status` escapes them (escape_text).
[[nodiscard]] std::string error_line(const Error& error);

/// A Failure that says `error` with its exit status.
[[nodiscard]] Failure failure_of(const Error& error);

/// The value, or a Failure with the error's message and exit status.
template <typename T> T value_or_fail(Result<T> result) {
  if (!result) {
    throw failure_of(result.error());
  }
  return std::move(result).value();
}

inline void value_or_fail(Result<void> result) {
  if (!result) {
    throw failure_of(result.error());
  }
}

} // namespace fasten::cli
