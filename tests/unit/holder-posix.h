#pragma once

// A child process that holds a lock for as long as a test wants (fork, so
// POSIX only).

#include <sys/wait.h>
#include <unistd.h>

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <thread>

#include "lock/file-handle.h"
#include "lock/lock.h"
#include "lock/status.h"

namespace fasten::test {

/// The signal that ends a timed lock wait on Linux (lock-linux.cc's
/// timer_signal()).
inline int lock_timer_signal() {
  return SIGRTMIN + 3;
}

/// Waits (up to 20 s) until the kernel's lock table says what `ready` wants
/// of the lock on `path`: a readiness probe instead of a sleep. True once it
/// does.
inline bool wait_for_status(const std::filesystem::path& path,
                            const std::function<bool(const LockStatus&)>& ready) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto status = query_status(path);
    if (status && ready(status.value())) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

/// Waits until `count` lock requests wait in the kernel on `path`.
inline bool wait_for_waiters(const std::filesystem::path& path, int count = 1) {
  return wait_for_status(path, [count](const LockStatus& status) { return status.waiting >= count; });
}

/// A thread that calls `act` once `ready` exists (or after 20 s). It blocks
/// every signal, as a lock's own thread does: SIGCHLD must reach
/// run_and_wait's signalfd, not a thread that would discard it.
inline std::thread when_file_exists(const std::filesystem::path& ready, std::function<void()> act) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  std::thread thread([ready, act = std::move(act)] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!std::filesystem::exists(ready) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    act();
  });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return thread;
}

/// Another process that takes the lock on `path` in `mode` and holds it until
/// release() or destruction. The constructor returns once the lock is held,
/// or, with Start::on_go, at once: the child then takes the lock after go(),
/// and wait_until_held() waits for it. (A child forked before the test takes
/// locks of its own starts with none of them.)
class Holder {
public:
  enum class Start { at_once, on_go };

  Holder(const std::filesystem::path& path, LockMode mode, Start start = Start::at_once) {
    int ready[2];
    int done[2];
    int go[2];
    if (pipe(ready) != 0 || pipe(done) != 0 || pipe(go) != 0) {
      std::abort();
    }
    std::fflush(nullptr); // or the child could write the parent's buffered output again
    m_pid = fork();
    if (m_pid == 0) {
      close(ready[0]);
      close(done[1]);
      close(go[1]);
      char byte;
      if (start == Start::on_go && read(go[0], &byte, 1) != 1) {
        _exit(1);
      }
      auto lock =
          LockFile::open(path, OpenOptions{.access = mode, .create = true, .create_mode = std::nullopt});
      if (!lock || !lock->acquire(mode)) {
        _exit(1);
      }
      (void)!write(ready[1], "x", 1);
      (void)!read(done[0], &byte, 1); // returns at end-of-file: the parent is done
      _exit(0);
    }
    close(ready[1]);
    close(done[0]);
    close(go[0]);
    m_ready.reset(ready[0]);
    m_done.reset(done[1]);
    m_go.reset(go[1]);
    if (start == Start::at_once) {
      wait_until_held();
    }
  }
  ~Holder() { release(); }
  Holder(const Holder&) = delete;
  Holder& operator=(const Holder&) = delete;

  bool held() const { return m_held; }
  pid_t pid() const { return m_pid; }

  /// Lets a Start::on_go child take the lock.
  void go() { (void)!write(m_go.get(), "x", 1); }

  /// Waits until the child holds the lock; false if it ended first.
  bool wait_until_held() {
    if (m_ready.valid()) {
      char byte;
      m_held = read(m_ready.get(), &byte, 1) == 1;
      m_ready.reset();
    }
    return m_held;
  }

  /// Ends the child normally; its lock goes with it.
  void release() {
    if (m_done.valid()) {
      m_done.reset();
      m_go.reset();
      m_ready.reset();
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
  FileHandle m_ready;
  FileHandle m_done;
  FileHandle m_go;
  bool m_held = false;
};

} // namespace fasten::test
