#pragma once

// What the unit tests share on every platform: a temporary directory that
// cleans up after itself, opening and trying a lock, and readiness probes.
// (holder-posix.h has a child process that holds a lock.)
//
// Threads that a test starts return what they got (std::async) for the
// test's own thread to check: doctest's assertions stay out of them, as
// MinGW-w64's runtime destroys a thread's thread_local objects (doctest's
// among them) after freeing their memory.

#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

#include "lock/lock.h"

namespace fasten::test {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Whether an assertion of the test case under way has failed (main.cc).
bool current_test_failed() noexcept;

/// A fresh directory, removed with everything in it when the test ends, or
/// kept for a look if the test failed.
class TempDir {
public:
  TempDir() {
    std::random_device random;
    do {
      m_path = std::filesystem::temp_directory_path() / ("fasten-test-" + std::to_string(random()));
    } while (!std::filesystem::create_directory(m_path));
  }
  ~TempDir() {
    if (current_test_failed()) {
      std::fprintf(stderr, "kept the failed test's files in %s\n", m_path.string().c_str());
      return;
    }
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

/// Waits (up to 20 s) until a probe that tries the lock on `path` in `mode`
/// once is turned away; each probe that gets in lets go at once. True once
/// one is turned away.
inline bool wait_until_refused(const std::filesystem::path& path, LockMode mode) {
  auto probe = open_lock(path, mode);
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    const auto outcome = probe.acquire(mode, std::chrono::nanoseconds(0));
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

/// Waits until someone holds the lock on `path`.
inline bool wait_until_held(const std::filesystem::path& path) {
  return wait_until_refused(path, LockMode::exclusive);
}

/// Waits until a writer waits on `path`, whose lock is held shared or not at
/// all: a reader is turned away then only by a writer in the turnstile
/// (protocol.h). A readiness probe on every platform, whether the writer
/// blocks in the kernel or retries.
inline bool wait_until_writer_waits(const std::filesystem::path& path) {
  return wait_until_refused(path, LockMode::shared);
}

} // namespace fasten::test
