#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

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

} // namespace fasten::cli
