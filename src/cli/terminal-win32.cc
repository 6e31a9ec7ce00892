#include <windows.h>

#include <io.h>

#include <cstdio>

#include "cli/terminal.h"

namespace fasten::cli {

bool stderr_is_terminal() {
  return _isatty(_fileno(stderr)) != 0;
}

bool terminal_in_foreground() {
  // A console has no background jobs.
  return true;
}

int terminal_columns() {
  CONSOLE_SCREEN_BUFFER_INFO info{};
  if (!GetConsoleScreenBufferInfo(GetStdHandle(STD_ERROR_HANDLE), &info)) {
    return 80;
  }
  return info.srWindow.Right - info.srWindow.Left + 1;
}

void write_to_terminal(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

void write_prepared(const char* bytes, size_t size) noexcept {
  DWORD written = 0;
  WriteFile(GetStdHandle(STD_ERROR_HANDLE), bytes, static_cast<DWORD>(size), &written, nullptr);
}

void end_by_default(int) noexcept {
}

// The console has no POSIX signals to catch: Ctrl-C ends fasten as before,
// and the line is left to the console.
LineSignals::LineSignals(Handler, Handler) {
}

LineSignals::~LineSignals() {
  restore();
}

void LineSignals::restore() noexcept {
  m_restored = true;
}

} // namespace fasten::cli
