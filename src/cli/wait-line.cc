#include "cli/wait-line.h"

#include <algorithm>
#include <array>
#include <atomic>

#include "cli/columns.h"
#include "cli/terminal.h"

namespace fasten::cli {

namespace {

using namespace std::chrono_literals;

/// What a signal handler may write: a sequence made ahead, by the line's
/// thread, and its length, 0 while it is being made.
struct Sequence {
  std::array<char, 4096> bytes{};
  std::atomic<size_t> size = 0;

  void set(const std::string& text) {
    size = 0;
    const size_t length = std::min(text.size(), bytes.size());
    std::copy_n(text.begin(), length, bytes.begin());
    size = length;
  }
  void write() const { write_prepared(bytes.data(), size); }
};

} // namespace

/// The two sequences the line's signal handlers write. Made with the line,
/// not kept in .bss: 8 kB there stood between the data that every start
/// writes, two pages more to fault in on the way to the command
/// (BENCHMARKS.md).
struct WaitLine::Prepared {
  Sequence blanking;
  Sequence redrawing;
};

namespace {

/// The shown line's sequences, while its handlers are installed.
std::atomic<WaitLine::Prepared*> g_prepared = nullptr;

void on_ending_signal(int signal) {
  if (const WaitLine::Prepared* prepared = g_prepared.load()) {
    prepared->blanking.write();
  }
  end_by_default(signal);
}

void on_continue(int) {
  const WaitLine::Prepared* prepared = g_prepared.load();
  if (prepared != nullptr && terminal_in_foreground()) {
    prepared->redrawing.write();
  }
}

} // namespace

WaitLine::WaitLine(Describe describe)
    : m_describe(std::move(describe)), m_prepared(publish(std::make_unique<Prepared>())),
      m_signals(on_ending_signal, on_continue), m_thread([this] { run(); }) {
}

std::unique_ptr<WaitLine::Prepared> WaitLine::publish(std::unique_ptr<Prepared> prepared) {
  g_prepared = prepared.get();
  return prepared;
}

WaitLine::~WaitLine() {
  {
    std::lock_guard guard(m_mutex);
    m_stopping = true;
  }
  m_stopping_changed.notify_all();
  m_thread.join();
  m_signals.restore();
  g_prepared = nullptr;
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
  m_prepared->blanking.set("\r" + std::string(m_shown, ' ') + "\r");
  m_prepared->redrawing.set("\r" + line);
}

WaitReminder::WaitReminder(std::chrono::nanoseconds interval, Say say)
    : m_interval(interval), m_say(std::move(say)), m_thread([this] { run(); }) {
}

WaitReminder::~WaitReminder() {
  {
    std::lock_guard guard(m_mutex);
    m_stopping = true;
  }
  m_stopping_changed.notify_all();
  m_thread.join();
}

void WaitReminder::run() {
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock guard(m_mutex);
  for (auto next = start + m_interval;; next += m_interval) {
    if (m_stopping_changed.wait_until(guard, next, [this] { return m_stopping; })) {
      return;
    }
    guard.unlock();
    m_say(std::chrono::round<std::chrono::seconds>(std::chrono::steady_clock::now() - start));
    guard.lock();
  }
}

} // namespace fasten::cli
