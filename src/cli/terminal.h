#pragma once

#include <cstddef>
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

/// Writes `size` bytes of `bytes` to stderr with nothing but write(2): safe
/// in a signal handler.
void write_prepared(const char* bytes, size_t size) noexcept;

/// Ends the process by `signal` at its default action, as if the handler
/// that calls it had not been there: a stop signal stops it (and the handler
/// is put back on SIGCONT). Safe in a signal handler.
void end_by_default(int signal) noexcept;

/// While the waiting line is shown, the signals that end fasten at their
/// default (HUP, INT, QUIT, TERM, USR1, USR2), and the stop from the
/// terminal (TSTP), go to `on_ending` first, and SIGCONT to
/// `on_continue`. Signals that fasten inherited ignored stay ignored.
/// restore() (or the destructor) puts back what was there.
class LineSignals {
public:
  using Handler = void (*)(int);
  LineSignals(Handler on_ending, Handler on_continue);
  LineSignals(const LineSignals&) = delete;
  LineSignals& operator=(const LineSignals&) = delete;
  ~LineSignals();
  void restore() noexcept;

private:
  bool m_restored = false;
};

} // namespace fasten::cli
