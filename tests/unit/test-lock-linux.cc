// The library's tests on Linux (lock-linux.cc) that need another process that
// holds the lock (fork), signals, permission bits and errno. test-lock.cc has
// the rest.

#include <doctest/doctest.h>

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "lock/byte-locks.h"
#include "lock/lock.h"
#include "lock/protocol.h"
#include "holder-posix.h"
#include "support.h"

using namespace fasten;
using namespace fasten::test;
using namespace std::chrono_literals;

TEST_CASE("an exclusive lock held by another process excludes exclusive and shared locks") {
  TempDir dir;
  Holder holder(dir / "lock", LockMode::exclusive);
  REQUIRE(holder.held());
  auto exclusive = open_lock(dir / "lock");
  auto shared = open_lock(dir / "lock", LockMode::shared);
  CHECK(try_lock(exclusive, LockMode::exclusive) == Outcome::timed_out);
  CHECK(try_lock(shared, LockMode::shared) == Outcome::timed_out);
  holder.release();
  CHECK(try_lock(exclusive, LockMode::exclusive) == Outcome::acquired);
}

TEST_CASE("shared locks of two processes are held together, and exclude an exclusive lock") {
  TempDir dir;
  Holder reader(dir / "lock", LockMode::shared);
  REQUIRE(reader.held());
  auto shared = open_lock(dir / "lock", LockMode::shared);
  CHECK(try_lock(shared, LockMode::shared) == Outcome::acquired);
  auto exclusive = open_lock(dir / "lock");
  CHECK(try_lock(exclusive, LockMode::exclusive) == Outcome::timed_out);
  REQUIRE(shared.release());
  reader.release();
  CHECK(try_lock(exclusive, LockMode::exclusive) == Outcome::acquired);
}

TEST_CASE("a holder killed with SIGKILL leaves the lock free") {
  TempDir dir;
  Holder holder(dir / "lock", LockMode::exclusive);
  REQUIRE(holder.held());
  auto lock = open_lock(dir / "lock");
  REQUIRE(try_lock(lock, LockMode::exclusive) == Outcome::timed_out);
  holder.kill_hard();
  CHECK(try_lock(lock, LockMode::exclusive) == Outcome::acquired);
}

TEST_CASE("a zero timeout makes exactly one try against another process") {
  TempDir dir;
  Holder holder(dir / "lock", LockMode::exclusive);
  REQUIRE(holder.held());
  auto lock = open_lock(dir / "lock");
  const auto start = Clock::now();
  CHECK(try_lock(lock, LockMode::exclusive, 0ns) == Outcome::timed_out);
  CHECK(seconds_since(start) < 0.1);
}

TEST_CASE("a 0.3 s timeout on another process's lock ends the wait with timed_out after about 0.3 s") {
  TempDir dir;
  Holder holder(dir / "lock", LockMode::exclusive);
  REQUIRE(holder.held());
  auto lock = open_lock(dir / "lock");
  const auto start = Clock::now();
  CHECK(try_lock(lock, LockMode::exclusive, 300ms) == Outcome::timed_out);
  const double waited = seconds_since(start);
  CHECK(waited >= 0.29);
  CHECK(waited < 1.5);
  CHECK_FALSE(lock.held());
}

TEST_CASE("a child of fork times out its wait, after the parent's thread made its timer") {
  TempDir dir;
  Holder holder(dir / "lock", LockMode::exclusive);
  REQUIRE(holder.held());
  auto lock = open_lock(dir / "lock");
  // This thread's timer now exists, in this process only.
  REQUIRE(try_lock(lock, LockMode::exclusive, 10ms) == Outcome::timed_out);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    alarm(30); // a wait that never times out ends here, by SIGALRM
    auto again = open_lock(dir / "lock");
    _exit(try_lock(again, LockMode::exclusive, 100ms) == Outcome::timed_out ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("the timeout holds when the timer signal was set to be ignored") {
  TempDir dir;
  Holder holder(dir / "lock", LockMode::exclusive);
  REQUIRE(holder.held());
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(lock_timer_signal(), &ignore, nullptr);
  auto lock = open_lock(dir / "lock");
  const auto start = Clock::now();
  CHECK(try_lock(lock, LockMode::exclusive, 200ms) == Outcome::timed_out);
  CHECK(seconds_since(start) < 1.5);
}

TEST_CASE("the timeout holds when the thread inherited every signal blocked") {
  TempDir dir;
  Holder holder(dir / "lock", LockMode::exclusive);
  REQUIRE(holder.held());
  std::atomic<bool> done{false};
  double waited = 0;
  std::thread waiter([&] {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    auto lock = open_lock(dir / "lock");
    const auto start = Clock::now();
    done = lock.acquire(LockMode::exclusive, 200ms).value() == Outcome::timed_out;
    waited = seconds_since(start);
    sigset_t after;
    pthread_sigmask(SIG_BLOCK, nullptr, &after);
    CHECK(sigismember(&after, lock_timer_signal()) == 1); // the mask is as it was
  });
  waiter.join();
  CHECK(done.load());
  CHECK(waited < 1.5);
}

namespace {
extern "C" void count_usr1(int) {
}
} // namespace

TEST_CASE("an unrelated signal does not end a timed wait early") {
  TempDir dir;
  Holder holder(dir / "lock", LockMode::exclusive);
  REQUIRE(holder.held());
  struct sigaction action {};
  action.sa_handler = count_usr1;
  sigemptyset(&action.sa_mask);
  struct sigaction saved {};
  sigaction(SIGUSR1, &action, &saved); // no SA_RESTART: the wait sees EINTR

  std::atomic<bool> waiting{true};
  const pthread_t waiter_thread = pthread_self();
  std::thread pester([&] {
    while (waiting) {
      pthread_kill(waiter_thread, SIGUSR1);
      std::this_thread::sleep_for(20ms);
    }
  });
  auto lock = open_lock(dir / "lock");
  const auto start = Clock::now();
  const auto outcome = try_lock(lock, LockMode::exclusive, 400ms);
  const double waited = seconds_since(start);
  waiting = false;
  pester.join();
  sigaction(SIGUSR1, &saved, nullptr);
  CHECK(outcome == Outcome::timed_out);
  CHECK(waited >= 0.39);
  CHECK(waited < 1.5);
}

namespace {
extern "C" void programs_own_timer_handler(int) {
}

/// Whether the timer signal's handler is the program's own.
bool programs_own_handler_is_set() {
  struct sigaction now {};
  sigaction(lock_timer_signal(), nullptr, &now);
  return (now.sa_flags & SA_SIGINFO) == 0 && now.sa_handler == &programs_own_timer_handler;
}
} // namespace

TEST_CASE("a timed wait, for a lock or for any slot, puts back the timer signal's handler it found") {
  TempDir dir;
  struct sigaction own {};
  own.sa_handler = programs_own_timer_handler;
  sigemptyset(&own.sa_mask);
  struct sigaction saved {};
  sigaction(lock_timer_signal(), &own, &saved);
  {
    Holder holder(dir / "lock", LockMode::exclusive);
    REQUIRE(holder.held());
    auto lock = open_lock(dir / "lock");
    CHECK(try_lock(lock, LockMode::exclusive, 50ms) == Outcome::timed_out);
    CHECK(programs_own_handler_is_set());
  }
  if (locks_belong_to_open_files()) {
    auto first = open_lock(dir / "lock");
    auto second = open_lock(dir / "lock");
    REQUIRE(first.acquire_slot(2, k_no_wait).value() == 0);
    REQUIRE(second.acquire_slot(2, k_no_wait).value() == 1);
    auto waiter = open_lock(dir / "lock");
    auto slot = waiter.acquire_slot(2, 50ms);
    REQUIRE(slot.ok());
    CHECK(slot.value() == std::nullopt);
    CHECK(programs_own_handler_is_set());
  }
  sigaction(lock_timer_signal(), &saved, nullptr);
}

TEST_CASE("a release wakes a waiter that is blocked without a timeout, promptly") {
  TempDir dir;
  Holder holder(dir / "lock", LockMode::exclusive);
  REQUIRE(holder.held());
  std::atomic<bool> acquired{false};
  Clock::time_point acquired_at;
  std::thread waiter([&] {
    auto lock = open_lock(dir / "lock");
    acquired = lock.acquire(LockMode::exclusive, 10s).value() == Outcome::acquired;
    acquired_at = Clock::now();
  });
  REQUIRE(wait_for_waiters(dir / "lock"));
  REQUIRE_FALSE(acquired.load());
  const auto released_at = Clock::now();
  holder.release();
  waiter.join();
  CHECK(acquired.load());
  CHECK(std::chrono::duration<double>(acquired_at - released_at).count() < 0.5);
}

TEST_CASE("a missing lock file is created, with the exact mode when one is given") {
  TempDir dir;
  const mode_t old_umask = umask(077);
  auto plain = LockFile::open(dir / "plain");
  auto exact = LockFile::open(
      dir / "exact", OpenOptions{.access = LockMode::exclusive, .create = true, .create_mode = 0664});
  umask(old_umask);
  REQUIRE(plain.ok());
  REQUIRE(exact.ok());
  struct stat info {};
  REQUIRE(stat((dir / "plain").c_str(), &info) == 0);
  CHECK((info.st_mode & 07777) == 0600); // 0666 less the umask
  CHECK(info.st_size == 0);
  REQUIRE(stat((dir / "exact").c_str(), &info) == 0);
  CHECK((info.st_mode & 07777) == 0664); // exactly, umask or not
}

TEST_CASE("a lock file in a missing directory is an open error that carries errno and its text") {
  TempDir dir;
  auto lock = LockFile::open(dir / "no-such-dir" / "lock");
  REQUIRE_FALSE(lock.ok());
  CHECK(lock.error().kind() == ErrorKind::open);
  CHECK(lock.error().sys_errno() == ENOENT);
  CHECK(lock.error().message().find((dir / "no-such-dir" / "lock").string()) != std::string::npos);
  CHECK(lock.error().message().find("No such file or directory") != std::string::npos);
}

TEST_CASE("a directory takes a shared lock") {
  TempDir dir;
  auto shared = LockFile::open(
      dir.path(), OpenOptions{.access = LockMode::shared, .create = true, .create_mode = std::nullopt});
  REQUIRE(shared.ok());
  CHECK(try_lock(shared.value(), LockMode::shared) == Outcome::acquired);
}

TEST_CASE("an exclusive lock on a file opened for reading only is a lock error") {
  TempDir dir;
  auto lock = open_lock(dir / "lock", LockMode::shared);
  auto outcome = lock.acquire(LockMode::exclusive, k_no_wait);
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.error().kind() == ErrorKind::lock);
  CHECK(outcome.error().sys_errno() == EBADF);
}

TEST_CASE("a reader of this process that comes after another process's writer waits behind it") {
  // Where locks belong to the process (classic fcntl), this process's shared
  // holds are one kernel lock; a new reader must still queue behind a writer
  // rather than join the hold the process has.
  TempDir dir;
  const auto path = dir / "lock";
  Holder writer(path, LockMode::exclusive, Holder::Start::on_go);
  auto inside = open_lock(path, LockMode::shared);
  REQUIRE(try_lock(inside, LockMode::shared) == Outcome::acquired);
  writer.go();
  REQUIRE(wait_for_waiters(path));
  auto later = open_lock(path, LockMode::shared);
  CHECK(try_lock(later, LockMode::shared) == Outcome::timed_out);
  REQUIRE(inside.release());
  REQUIRE(writer.wait_until_held());
  CHECK(try_lock(later, LockMode::shared) == Outcome::timed_out);
  writer.release();
  CHECK(try_lock(later, LockMode::shared, 600s) == Outcome::acquired);
}

namespace {

/// Whether the kernel sees a lock on the protocol's data byte, asked through
/// an open file of the test's own with F_OFD_GETLK: OFD and classic locks
/// conflict even within one process, so this sees the process's classic
/// locks too.
bool kernel_sees_lock(int probe) {
  struct flock range {};
  range.l_type = F_WRLCK;
  range.l_whence = SEEK_SET;
  range.l_start = protocol::k_data;
  range.l_len = 1;
  REQUIRE(fcntl(probe, F_OFD_GETLK, &range) == 0);
  return range.l_type != F_UNLCK;
}

} // namespace

TEST_CASE("a thread that destroys idle lock objects does not drop the lock another thread has just taken") {
  // Where locks belong to the process (classic fcntl), closing any descriptor
  // of the file drops them all: an idle object's descriptor must close while
  // the process's lock table still says that nothing is held, never after.
  TempDir dir;
  const auto path = dir / "lock";
  FileHandle probe(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  REQUIRE(probe.valid());
  std::atomic<bool> done{false};
  std::thread destroyer([&] {
    while (!done.load()) {
      auto idle = LockFile::open(
          path, OpenOptions{.access = LockMode::exclusive, .create = false, .create_mode = std::nullopt});
      REQUIRE(idle.ok());
    }
  });
  constexpr int k_rounds = 100'000;
  int lost = 0;
  auto taker = open_lock(path);
  for (int round = 0; round < k_rounds; ++round) {
    REQUIRE(try_lock(taker, LockMode::exclusive, wait_forever) == Outcome::acquired);
    if (!kernel_sees_lock(probe.get())) {
      ++lost;
    }
    REQUIRE(taker.release());
  }
  done = true;
  destroyer.join();
  CHECK_MESSAGE(lost == 0, "the kernel lost the lock in ", lost, " of ", k_rounds, " rounds");
}

TEST_CASE("unlock_each unlocks the bytes it names and none beyond them") {
  if (!locks_belong_to_open_files()) {
    return; // a process's classic locks do not exclude its own other file
  }
  TempDir dir;
  const std::string path = (dir / "lock").string();
  const FileHandle holder(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  const FileHandle other(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  REQUIRE(holder.valid());
  REQUIRE(other.valid());
  ByteLocks& bytes = platform::byte_locks();
  const std::int64_t named[] = {protocol::k_data, protocol::k_slots + 1, protocol::k_slot_counts + 2};
  const std::int64_t beyond[] = {protocol::k_turnstile, protocol::k_slot_counts + 3};
  for (const auto byte : named) {
    REQUIRE(bytes.try_lock(holder.get(), byte, LockMode::exclusive, path).value() == Outcome::acquired);
  }
  for (const auto byte : beyond) {
    REQUIRE(bytes.try_lock(holder.get(), byte, LockMode::exclusive, path).value() == Outcome::acquired);
  }
  REQUIRE(bytes.unlock_each(holder.get(), {named[0], named[2], named[1]}, path));
  for (const auto byte : named) {
    CHECK(bytes.probe(other.get(), byte, path).value() == Seen::free);
  }
  for (const auto byte : beyond) {
    CHECK(bytes.probe(other.get(), byte, path).value() == Seen::exclusive);
  }
}
