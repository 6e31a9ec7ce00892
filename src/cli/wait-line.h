#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cli/terminal.h"

namespace fasten::cli {

/// The one line a person at a terminal sees while fasten waits for a lock:
/// nothing for the first second, then what `describe` says, rewritten in
/// place once a second. Destroying it erases the line, so that the command
/// writes to a clean terminal. Drawn from a thread of its own while the
/// caller blocks in the lock call.
class WaitLine {
public:
  /// What to show, given how long fasten has waited, in `columns` at most;
  /// called from the line's thread.
  using Describe = std::function<std::string(std::chrono::seconds waited, size_t columns)>;

  explicit WaitLine(Describe describe);
  WaitLine(const WaitLine&) = delete;
  WaitLine& operator=(const WaitLine&) = delete;
  ~WaitLine();

  /// What its signal handlers write (wait-line.cc).
  struct Prepared;

private:
  static std::unique_ptr<Prepared> publish(std::unique_ptr<Prepared> prepared);
  void run();
  void draw(const std::string& line, size_t columns);

  Describe m_describe;
  /// Made before the handlers are installed, and published to them.
  std::unique_ptr<Prepared> m_prepared;
  /// Blanks the line before a signal ends or stops fasten, and draws it
  /// again on SIGCONT.
  LineSignals m_signals;
  std::mutex m_mutex;
  std::condition_variable m_stopping_changed;
  bool m_stopping = false;
  /// The columns the line takes on the terminal now, to blank on the next
  /// draw (at most the width at the last draw).
  size_t m_shown = 0;
  std::thread m_thread;
};

/// With -v where no waiting line is shown (a CI log, -q): a line every
/// `interval` while fasten waits, so that a long wait shows that it goes on,
/// and on whom, between the line at its start and the one at its end. Said
/// from a thread of its own while the caller blocks in the lock call;
/// destroying it stops it.
class WaitReminder {
public:
  /// Says the line, given how long fasten has waited; called from the
  /// reminder's thread.
  using Say = std::function<void(std::chrono::seconds waited)>;

  WaitReminder(std::chrono::nanoseconds interval, Say say);
  WaitReminder(const WaitReminder&) = delete;
  WaitReminder& operator=(const WaitReminder&) = delete;
  ~WaitReminder();

private:
  void run();

  std::chrono::nanoseconds m_interval;
  Say m_say;
  std::mutex m_mutex;
  std::condition_variable m_stopping_changed;
  bool m_stopping = false;
  std::thread m_thread;
};

} // namespace fasten::cli
