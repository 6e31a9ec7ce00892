#pragma once

#include <string_view>

// The terminal that a person watches fasten's stderr on, one file per
// platform: terminal-posix.cc, terminal-win32.cc.
namespace fasten::cli {

/// Whether stderr is a terminal (not a file, a pipe, cron's mail or a CI log).
[[nodiscard]] bool stderr_is_terminal();

/// Whether this process's group is the terminal's foreground group: a
/// background job (`fasten ... &` at a prompt) must not draw over what the
/// person types. True where the system has no such groups.
[[nodiscard]] bool terminal_in_foreground();

/// The width of that terminal in columns; 80 when it does not say.
[[nodiscard]] int terminal_columns();

/// Writes `text` to stderr unbuffered, as it is. A line that cannot be shown
/// changes nothing else, so a failed write is ignored.
void write_to_terminal(std::string_view text);

} // namespace fasten::cli
