#pragma once

#include <spdlog/fmt/fmt.h>

#include <string_view>

// Everything fasten says on stderr goes through here: one line each, starting
// with "fasten: ". stdout belongs to the command.
namespace fasten::cli {

/// Writes fasten's own output (`status`, `--help`, `--version`) on stdout
/// and flushes it: a Failure with status 74 (EX_IOERR) when it cannot be
/// written (a full disk, /dev/full, a closed pipe whose SIGPIPE is ignored).
void write_output(std::string_view text);

/// A failure of fasten's own.
void report_error(std::string_view message);

/// Turns on the -v messages.
void enable_verbose();
bool verbose_enabled();

/// A -v message: what fasten waits for, got, released.
void verbose_line(std::string_view message);

template <typename... Args> void verbose(fmt::format_string<Args...> format, Args&&... args) {
  if (verbose_enabled()) {
    verbose_line(fmt::format(format, std::forward<Args>(args)...));
  }
}

} // namespace fasten::cli
