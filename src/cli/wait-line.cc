#include "cli/wait-line.h"

#include <algorithm>

#include "cli/terminal.h"

namespace fasten::cli {

namespace {

using namespace std::chrono_literals;

/// Columns that `text` takes: UTF-8 continuation bytes take none.
size_t columns_of(const std::string& text) {
  return static_cast<size_t>(std::count_if(
      text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

/// `text` cut to `columns`, never inside a UTF-8 sequence: a line that
/// wrapped could no longer be rewritten in place.
std::string fitted(std::string text, size_t columns) {
  size_t seen = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80 && seen++ == columns) {
      text.resize(i);
      break;
    }
  }
  return text;
}

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
    guard.unlock();
    const std::string text = m_describe(waited);
    guard.lock();
    if (!m_stopping) {
      draw(text);
    }
  }
}

void WaitLine::draw(const std::string& text) {
  // The last column stays free: some terminals wrap on writing to it.
  const std::string line = fitted(text, static_cast<size_t>(std::max(terminal_columns() - 1, 1)));
  const size_t shown = columns_of(line);
  write_to_terminal("\r" + line + std::string(m_shown > shown ? m_shown - shown : 0, ' '));
  m_shown = std::max(m_shown, shown);
}

} // namespace fasten::cli
