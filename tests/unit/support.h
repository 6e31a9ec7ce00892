#pragma once

// What the unit tests share on every platform: a temporary directory that
// cleans up after itself, and opening a lock. (holder-posix.h has a child
// process that holds a lock.)

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lock/lock.h"

namespace fasten::test {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// A fresh directory, removed with everything in it when the test ends.
class TempDir {
public:
  TempDir() {
    std::random_device random;
    do {
      m_path = std::filesystem::temp_directory_path() / ("fasten-test-" + std::to_string(random()));
    } while (!std::filesystem::create_directory(m_path));
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::filesystem::path operator/(const std::string& name) const { return m_path / name; }
  const std::filesystem::path& path() const { return m_path; }

private:
  std::filesystem::path m_path;
};

inline constexpr Timeout k_no_wait = std::chrono::nanoseconds(0);

/// Tries `lock` in `mode` (once, or up to `timeout`), failing the test on an
/// error.
inline Outcome try_lock(LockFile& lock, LockMode mode, Timeout timeout = k_no_wait) {
  auto outcome = lock.acquire(mode, timeout);
  REQUIRE_MESSAGE(outcome.ok(), (outcome.ok() ? "" : outcome.error().message()));
  return outcome.value();
}

/// Opens `path` for `mode` and fails the test if that does not work.
inline LockFile open_lock(const std::filesystem::path& path, LockMode mode = LockMode::exclusive) {
  auto lock = LockFile::open(path, OpenOptions{.access = mode, .create = true, .create_mode = std::nullopt});
  if (!lock) {
    throw std::runtime_error(lock.error().message());
  }
  return std::move(lock).value();
}

/// Waits (up to 20 s) until someone holds the lock on `path`: a readiness
/// probe, which tries the lock once now and then and lets go of it at once.
inline bool wait_until_held(const std::filesystem::path& path) {
  auto probe = open_lock(path);
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    const auto outcome = probe.acquire(LockMode::exclusive, std::chrono::nanoseconds(0));
    if (!outcome) {
      return false;
    }
    if (outcome.value() == Outcome::timed_out) {
      return true;
    }
    (void)probe.release();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

/// Readers in threads of this process, one every 0.25 s, each holding the
/// lock 0.6 s, so that they always overlap: without writer preference a
/// writer would wait until the stream ends.
class ReaderStream {
public:
  ReaderStream(std::filesystem::path path, int count)
      : m_path(std::move(path)), m_stream([this, count] {
          for (int i = 0; i < count; ++i) {
            m_readers.emplace_back([this] {
              auto lock = open_lock(m_path, LockMode::shared);
              if (lock.acquire(LockMode::shared, std::chrono::seconds(20)).value() == Outcome::acquired) {
                std::this_thread::sleep_for(std::chrono::milliseconds(600));
                ++m_got_in;
              }
            });
            std::this_thread::sleep_for(std::chrono::milliseconds(250));
          }
        }) {}
  ~ReaderStream() { join(); }
  ReaderStream(const ReaderStream&) = delete;
  ReaderStream& operator=(const ReaderStream&) = delete;

  /// Waits for every reader; returns how many got the lock.
  int join() {
    if (m_stream.joinable()) {
      m_stream.join();
      for (auto& reader : m_readers) {
        reader.join();
      }
    }
    return m_got_in;
  }

private:
  std::filesystem::path m_path;
  std::atomic<int> m_got_in{0};
  std::vector<std::thread> m_readers;
  std::thread m_stream; // last: it starts once the members it uses exist
};

} // namespace fasten::test
