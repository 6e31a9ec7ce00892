#pragma once

// What the unit tests share: a temporary directory that cleans up after
// itself, and a child process that holds a lock for as long as a test wants.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

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
    std::string pattern = (std::filesystem::temp_directory_path() / "fasten-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      std::abort();
    }
    m_path = pattern;
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

/// Another process that takes the lock on `path` in `mode` and holds it until
/// release() or destruction. The constructor returns once the lock is held.
class Holder {
public:
  Holder(const std::filesystem::path& path, LockMode mode) {
    int ready[2];
    int done[2];
    if (pipe(ready) != 0 || pipe(done) != 0) {
      std::abort();
    }
    std::fflush(nullptr); // or the child could write the parent's buffered output again
    m_pid = fork();
    if (m_pid == 0) {
      close(ready[0]);
      close(done[1]);
      auto lock =
          LockFile::open(path, OpenOptions{.access = mode, .create = true, .create_mode = std::nullopt});
      if (!lock || !lock->acquire(mode)) {
        _exit(1);
      }
      (void)!write(ready[1], "x", 1);
      char byte;
      (void)!read(done[0], &byte, 1); // returns at end-of-file: the parent is done
      _exit(0);
    }
    close(ready[1]);
    close(done[0]);
    m_done = done[1];
    char byte;
    m_held = read(ready[0], &byte, 1) == 1;
    close(ready[0]);
  }
  ~Holder() { release(); }
  Holder(const Holder&) = delete;
  Holder& operator=(const Holder&) = delete;

  bool held() const { return m_held; }
  pid_t pid() const { return m_pid; }

  /// Ends the child normally; its lock goes with it.
  void release() {
    if (m_done >= 0) {
      close(m_done);
      m_done = -1;
      waitpid(m_pid, nullptr, 0);
    }
  }

  /// Ends the child with SIGKILL, as a crash would.
  void kill_hard() {
    ::kill(m_pid, SIGKILL);
    release();
  }

private:
  pid_t m_pid = -1;
  int m_done = -1;
  bool m_held = false;
};

/// Opens `path` for `mode` and fails the test if that does not work.
inline LockFile open_lock(const std::filesystem::path& path, LockMode mode = LockMode::exclusive) {
  auto lock = LockFile::open(path, OpenOptions{.access = mode, .create = true, .create_mode = std::nullopt});
  if (!lock) {
    throw std::runtime_error(lock.error().message());
  }
  return std::move(lock).value();
}

} // namespace fasten::test
