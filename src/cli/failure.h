#pragma once

#include <stdexcept>
#include <string>

#include "lock/result.h"

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

/// The exit status for a library error: 66 cannot open, 73 cannot create, 65
/// lock refused or misused, 71 the system failed.
[[nodiscard]] int exit_status_for(const Error& error);

/// The value, or a Failure with the error's message and exit status.
template <typename T> T value_or_fail(Result<T> result) {
  if (!result) {
    throw Failure(exit_status_for(result.error()), result.error().message());
  }
  return std::move(result).value();
}

inline void value_or_fail(Result<void> result) {
  if (!result) {
    throw Failure(exit_status_for(result.error()), result.error().message());
  }
}

} // namespace fasten::cli
