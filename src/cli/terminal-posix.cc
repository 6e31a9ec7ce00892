#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>

#include "cli/terminal.h"

namespace fasten::cli {

bool stderr_is_terminal() {
  return isatty(STDERR_FILENO) == 1;
}

bool terminal_in_foreground() {
  return tcgetpgrp(STDERR_FILENO) == getpgrp();
}

int terminal_columns() {
  winsize size{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) != 0 || size.ws_col == 0) {
    return 80;
  }
  return size.ws_col;
}

void write_to_terminal(std::string_view text) {
  while (!text.empty()) {
    const ssize_t written = write(STDERR_FILENO, text.data(), text.size());
    if (written < 0 && errno == EINTR) {
      continue;
    }
    if (written <= 0) {
      return;
    }
    text.remove_prefix(static_cast<size_t>(written));
  }
}

namespace {

constexpr std::array k_ending_signals{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGTSTP};

/// Each ending signal's handler before the line's, to put back.
std::array<struct sigaction, k_ending_signals.size()> g_before{};
struct sigaction g_continue_before {};
void (*g_on_ending)(int) = nullptr;
void (*g_on_continue)(int) = nullptr;

void install(int signal, void (*handler)(int), struct sigaction* before) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  // A blocking lock call goes on waiting after the handler (F_SETLKW and
  // F_OFD_SETLKW are restarted).
  action.sa_flags = SA_RESTART;
  sigaction(signal, &action, before);
}

/// After a stop: the stop signal's handler back (end_by_default put the
/// default there), then the caller's.
void continued(int signal) {
  if (g_before.back().sa_handler == SIG_DFL) {
    install(SIGTSTP, g_on_ending, nullptr);
  }
  g_on_continue(signal);
}

} // namespace

void write_prepared(const char* bytes, size_t size) noexcept {
  while (size > 0) {
    const ssize_t written = write(STDERR_FILENO, bytes, size);
    if (written < 0 && errno == EINTR) {
      continue;
    }
    if (written <= 0) {
      return;
    }
    bytes += written;
    size -= static_cast<size_t>(written);
  }
}

void end_by_default(int signal) noexcept {
  const int saved = errno;
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(signal, &action, nullptr);
  // Blocked while its handler runs: it takes its default action as soon as
  // the handler returns.
  raise(signal);
  errno = saved;
}

LineSignals::LineSignals(Handler on_ending, Handler on_continue) {
  g_on_ending = on_ending;
  g_on_continue = on_continue;
  for (size_t i = 0; i < k_ending_signals.size(); ++i) {
    struct sigaction current {};
    sigaction(k_ending_signals[i], nullptr, &current);
    g_before[i] = current;
    // An ignored signal (nohup's HUP) or one with a handler of its own is
    // left as it is.
    if (current.sa_handler == SIG_DFL) {
      install(k_ending_signals[i], on_ending, nullptr);
    }
  }
  install(SIGCONT, continued, &g_continue_before);
}

LineSignals::~LineSignals() {
  restore();
}

void LineSignals::restore() noexcept {
  if (m_restored) {
    return;
  }
  m_restored = true;
  for (size_t i = 0; i < k_ending_signals.size(); ++i) {
    sigaction(k_ending_signals[i], &g_before[i], nullptr);
  }
  sigaction(SIGCONT, &g_continue_before, nullptr);
}

} // namespace fasten::cli
