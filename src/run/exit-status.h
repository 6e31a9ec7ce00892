#pragma once

namespace fasten::run {

/// How a command ended: it exited with a code, or a signal killed it.
class ExitStatus {
public:
  static ExitStatus exited(int code) noexcept { return ExitStatus(code, 0); }
  static ExitStatus killed_by(int signal) noexcept { return ExitStatus(0, signal); }

  bool signaled() const noexcept { return m_signal != 0; }
  int code() const noexcept { return m_code; }
  int signal() const noexcept { return m_signal; }

  /// The status a shell reports for it: the code, or 128 + the signal.
  int shell_status() const noexcept;

private:
  ExitStatus(int code, int signal) noexcept : m_code(code), m_signal(signal) {}
  int m_code;
  int m_signal;
};

/// Ends fasten the way the command ended: with its exit code, or, for a
/// signal that terminates without a core dump (INT, TERM, HUP, ...), by that
/// same signal, which a shell reports as 128 + N and which lets a shell loop
/// stop on Ctrl-C. Other signals exit with 128 + N, so fasten leaves no core
/// file of its own. On Windows it exits with the command's code.
[[noreturn]] void exit_like(ExitStatus status);

} // namespace fasten::run
