#include "cli/wait-line.h"

#include <algorithm>

#include "cli/columns.h"
#include "cli/terminal.h"

namespace fasten::cli {

namespace {

using namespace std::chrono_literals;

} // namespace

WaitLine::WaitLine(Describe describe) : m_describe(std::move(describe)), m_thread([this] { run(); }) {
}

WaitLine::~WaitLine() {
  {
    std::lock_guard guard(m_mutex);
    m_stopping = true;
  }
  m_stopping_changed.notify_all();
  m_thread.join();
  if (m_shown > 0) {
    // Blanks rather than an escape sequence: every terminal, the Windows
    // console included, takes a carriage return and spaces.
    write_to_terminal("\r" + std::string(m_shown, ' ') + "\r");
  }
}

void WaitLine::run() {
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock guard(m_mutex);
  for (auto next = start + 1s;; next += 1s) {
    if (m_stopping_changed.wait_until(guard, next, [this] { return m_stopping; })) {
      return;
    }
    const auto waited =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start);
    // The width is asked before each update: the terminal may have been
    // resized since the last. The last column stays free: some terminals
    // wrap on writing to it.
    const auto columns = static_cast<size_t>(std::max(terminal_columns() - 1, 1));
    guard.unlock();
    const std::string text = m_describe(waited, columns);
    guard.lock();
    if (!m_stopping && terminal_in_foreground()) {
      draw(cut_to(text, columns), columns);
    }
  }
}

void WaitLine::draw(const std::string& line, size_t columns) {
  const size_t shown = display_columns(line);
  // Blanks what is left of the last line, but never past the width now: a
  // line padded to a wider terminal's width would wrap after a resize.
  const size_t blank = std::min(m_shown, columns);
  write_to_terminal("\r" + line + std::string(blank > shown ? blank - shown : 0, ' '));
  m_shown = std::max(blank, shown);
}

} // namespace fasten::cli
