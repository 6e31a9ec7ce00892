// The library's tests that hold on every platform: lock objects and threads
// of this process against each other, which exclude each other as processes
// do. test-lock-linux.cc has those that need another process or signals.

#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <future>
#include <iterator>
#include <optional>
#include <thread>

#include "lock/lock.h"
#include "lock/protocol.h"
#include "support.h"

using namespace fasten;
using namespace fasten::test;
using namespace std::chrono_literals;

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

TEST_CASE("two lock objects in one process exclude each other as two processes do") {
  TempDir dir;
  auto first = open_lock(dir / "lock");
  auto second = open_lock(dir / "lock");
  REQUIRE(try_lock(first, LockMode::exclusive) == Outcome::acquired);
  CHECK(try_lock(second, LockMode::exclusive) == Outcome::timed_out);
  CHECK(try_lock(second, LockMode::shared) == Outcome::timed_out);
  REQUIRE(first.release());
  CHECK(try_lock(second, LockMode::shared) == Outcome::acquired);
  REQUIRE(try_lock(first, LockMode::shared) == Outcome::acquired);
  auto third = open_lock(dir / "lock");
  CHECK(try_lock(third, LockMode::exclusive) == Outcome::timed_out);
}

TEST_CASE("a waiter in another thread gets the lock when this thread releases it") {
  TempDir dir;
  auto held = open_lock(dir / "lock", LockMode::shared);
  REQUIRE(try_lock(held, LockMode::shared) == Outcome::acquired);
  auto waiter = open_lock(dir / "lock");
  auto waiting = std::async(std::launch::async,
                            [&] { return waiter.acquire(LockMode::exclusive, wait_forever).value(); });
  REQUIRE(wait_until_writer_waits(dir / "lock"));
  CHECK(waiting.wait_for(0s) == std::future_status::timeout);
  REQUIRE(held.release());
  CHECK(waiting.get() == Outcome::acquired);
  CHECK(waiter.held());
}

TEST_CASE("shared locks of two objects are held together, and exclude an exclusive lock") {
  TempDir dir;
  auto reader = open_lock(dir / "lock", LockMode::shared);
  auto another = open_lock(dir / "lock", LockMode::shared);
  auto writer = open_lock(dir / "lock");
  REQUIRE(try_lock(reader, LockMode::shared) == Outcome::acquired);
  CHECK(try_lock(another, LockMode::shared) == Outcome::acquired);
  CHECK(try_lock(writer, LockMode::exclusive) == Outcome::timed_out);
  REQUIRE(reader.release());
  CHECK(try_lock(writer, LockMode::exclusive) == Outcome::timed_out);
  REQUIRE(another.release());
  CHECK(try_lock(writer, LockMode::exclusive) == Outcome::acquired);
}

TEST_CASE("a zero timeout makes exactly one try") {
  TempDir dir;
  auto holder = open_lock(dir / "lock");
  REQUIRE(try_lock(holder, LockMode::exclusive) == Outcome::acquired);
  auto lock = open_lock(dir / "lock");
  const auto start = Clock::now();
  CHECK(try_lock(lock, LockMode::exclusive, 0ns) == Outcome::timed_out);
  CHECK(try_lock(lock, LockMode::shared, 0ns) == Outcome::timed_out);
  CHECK(seconds_since(start) < 0.1);
  CHECK_FALSE(lock.held());
}

TEST_CASE("a 0.3 s timeout ends the wait with timed_out after about 0.3 s") {
  TempDir dir;
  auto holder = open_lock(dir / "lock");
  REQUIRE(try_lock(holder, LockMode::exclusive) == Outcome::acquired);
  auto lock = open_lock(dir / "lock");
  for (const LockMode mode : {LockMode::exclusive, LockMode::shared}) {
    const auto start = Clock::now();
    CHECK(try_lock(lock, mode, 300ms) == Outcome::timed_out);
    const double waited = seconds_since(start);
    CHECK(waited >= 0.29);
    CHECK(waited < 1.5);
    CHECK_FALSE(lock.held());
  }
  // Nothing of the timed-out waits is left behind.
  REQUIRE(holder.release());
  CHECK(try_lock(lock, LockMode::exclusive) == Outcome::acquired);
}

TEST_CASE("timeouts hold in several threads at once, each for its own deadline") {
  TempDir dir;
  auto holder = open_lock(dir / "lock");
  REQUIRE(try_lock(holder, LockMode::exclusive) == Outcome::acquired);
  std::atomic<int> timed_out{0};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  std::vector<double> waited(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto lock = open_lock(dir / "lock");
      if (lock.acquire(LockMode::exclusive, std::chrono::milliseconds(100 * (i + 1))).value() ==
          Outcome::timed_out) {
        ++timed_out;
      }
      waited[static_cast<size_t>(i)] = seconds_since(start);
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  CHECK(timed_out == 4);
  for (int i = 0; i < 4; ++i) {
    CHECK(waited[static_cast<size_t>(i)] >= 0.1 * (i + 1) - 0.01);
    CHECK(waited[static_cast<size_t>(i)] < 0.1 * (i + 1) + 1.0);
  }
}

TEST_CASE("a release wakes a waiter that is blocked with a timeout, before its deadline") {
  TempDir dir;
  auto holder = open_lock(dir / "lock", LockMode::shared);
  REQUIRE(try_lock(holder, LockMode::shared) == Outcome::acquired);
  auto waiter = open_lock(dir / "lock");
  // A timed-out wait would return timed_out: acquired means the release woke it.
  auto waiting =
      std::async(std::launch::async, [&] { return waiter.acquire(LockMode::exclusive, 600s).value(); });
  REQUIRE(wait_until_writer_waits(dir / "lock"));
  REQUIRE(holder.release());
  CHECK(waiting.get() == Outcome::acquired);
}

TEST_CASE("taking and releasing locks leaves the lock file's bytes as they were") {
  TempDir dir;
  {
    std::ofstream out(dir / "data", std::ios::binary);
    out << "precious\ncontents\0with a NUL" << std::string(1, '\0');
  }
  const std::string before = read_file(dir / "data");
  {
    auto lock = open_lock(dir / "data");
    REQUIRE(try_lock(lock, LockMode::exclusive) == Outcome::acquired);
    REQUIRE(lock.release());
    REQUIRE(try_lock(lock, LockMode::shared) == Outcome::acquired);
  }
  CHECK(read_file(dir / "data") == before);
}

TEST_CASE("open without create fails on a missing file, naming the path") {
  TempDir dir;
  auto lock = LockFile::open(
      dir / "missing",
      OpenOptions{.access = LockMode::exclusive, .create = false, .create_mode = std::nullopt});
  REQUIRE_FALSE(lock.ok());
  CHECK(lock.error().kind() == ErrorKind::open);
  CHECK(lock.error().sys_errno() != 0);
  CHECK(lock.error().message().find("missing") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "missing"));
}

TEST_CASE("a lock file in a missing directory is an open error that names the path") {
  TempDir dir;
  auto lock = LockFile::open(dir / "no-such-dir" / "lock");
  REQUIRE_FALSE(lock.ok());
  CHECK(lock.error().kind() == ErrorKind::open);
  CHECK(lock.error().sys_errno() != 0);
  CHECK(lock.error().message().find("no-such-dir") != std::string::npos);
}

#ifdef _WIN32
constexpr bool k_on_windows = true;
#else
constexpr bool k_on_windows = false;
#endif

// Not on Windows: there a file deleted or replaced while open may stay in
// its directory until its last handle closes (NTFS without POSIX delete
// semantics), and Wine does one or the other from run to run.
TEST_CASE("a lock file is named by its path until it is removed or another is moved over it" *
          doctest::skip(k_on_windows)) {
  TempDir dir;
  auto moved_over = open_lock(dir / "moved");
  CHECK(moved_over.is_named_by_its_path().value());
  std::ofstream(dir / "new").close();
  std::filesystem::rename(dir / "new", dir / "moved");
  CHECK_FALSE(moved_over.is_named_by_its_path().value());
  auto removed = open_lock(dir / "removed");
  std::filesystem::remove(dir / "removed");
  CHECK_FALSE(removed.is_named_by_its_path().value());
}

TEST_CASE("a directory refuses an exclusive lock with a lock error that says so") {
  TempDir dir;
  auto exclusive = LockFile::open(dir.path());
  REQUIRE_FALSE(exclusive.ok());
  CHECK(exclusive.error().kind() == ErrorKind::lock);
  CHECK(exclusive.error().message().find("directory") != std::string::npos);
}

TEST_CASE("permission bits for a new lock file are refused where files have none") {
  TempDir dir;
  auto lock = LockFile::open(dir / "lock",
                             OpenOptions{.access = LockMode::exclusive, .create = true, .create_mode = 0644});
  CHECK(lock.ok() == files_have_permission_bits());
  if (!lock.ok()) {
    CHECK(lock.error().kind() == ErrorKind::misuse);
    CHECK_FALSE(std::filesystem::exists(dir / "lock"));
  }
}

TEST_CASE("acquiring a held lock again, or upgrading shared to exclusive, is a misuse error") {
  TempDir dir;
  auto lock = open_lock(dir / "lock");
  REQUIRE(try_lock(lock, LockMode::exclusive) == Outcome::acquired);
  auto again = lock.acquire(LockMode::exclusive, wait_forever);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().kind() == ErrorKind::misuse);
  CHECK(lock.held() == LockMode::exclusive);

  REQUIRE(lock.release());
  REQUIRE(try_lock(lock, LockMode::shared) == Outcome::acquired);
  auto upgrade = lock.acquire(LockMode::exclusive, wait_forever);
  REQUIRE_FALSE(upgrade.ok());
  CHECK(upgrade.error().kind() == ErrorKind::misuse);
  CHECK(upgrade.error().message().find("upgrade") != std::string::npos);

  REQUIRE(lock.release());
  auto twice = lock.release();
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error().kind() == ErrorKind::misuse);
}

TEST_CASE("a LockGuard releases the lock when it goes out of scope") {
  TempDir dir;
  auto lock = open_lock(dir / "lock");
  auto other = open_lock(dir / "lock");
  {
    auto guard = acquire_guard(lock, LockMode::exclusive, k_no_wait);
    REQUIRE(guard.ok());
    REQUIRE(guard.value().has_value());
    CHECK(try_lock(other, LockMode::exclusive) == Outcome::timed_out);
  }
  CHECK_FALSE(lock.held());
  CHECK(try_lock(other, LockMode::exclusive) == Outcome::acquired);
  auto refused = acquire_guard(lock, LockMode::exclusive, k_no_wait);
  REQUIRE(refused.ok());
  CHECK_FALSE(refused.value().has_value());
}

TEST_CASE("with_lock runs the callable under the lock and returns its result, or the conflict") {
  TempDir dir;
  const auto path = dir / "lock";
  auto result = with_lock(path, LockMode::exclusive, k_no_wait, [&] {
    auto other = open_lock(path);
    return other.acquire(LockMode::exclusive, k_no_wait).value() == Outcome::timed_out ? 42 : 0;
  });
  REQUIRE(result.ok());
  CHECK(result.value() == std::optional<int>(42));

  auto holder = open_lock(path);
  REQUIRE(try_lock(holder, LockMode::exclusive) == Outcome::acquired);
  bool ran = false;
  auto refused = with_lock(path, LockMode::exclusive, 50ms, [&] {
    ran = true;
    return 1;
  });
  REQUIRE(refused.ok());
  CHECK_FALSE(refused.value().has_value());
  CHECK_FALSE(ran);

  auto shared_void = with_lock(path, LockMode::shared, k_no_wait, [&] { ran = true; });
  REQUIRE(shared_void.ok());
  CHECK(shared_void.value() == Outcome::timed_out);
  CHECK_FALSE(ran);
  REQUIRE(holder.release());
  auto void_ok = with_lock(path, LockMode::shared, k_no_wait, [&] { ran = true; });
  REQUIRE(void_ok.ok());
  CHECK(void_ok.value() == Outcome::acquired);
  CHECK(ran);

  auto error = with_lock(dir / "missing" / "lock", LockMode::exclusive, k_no_wait, [] { return 1; });
  REQUIRE_FALSE(error.ok());
  CHECK(error.error().kind() == ErrorKind::open);
}

TEST_CASE("a writer that times out in the turnstile lets readers in again") {
  TempDir dir;
  auto reader = open_lock(dir / "lock", LockMode::shared);
  REQUIRE(try_lock(reader, LockMode::shared) == Outcome::acquired);
  auto writer = open_lock(dir / "lock");
  CHECK(try_lock(writer, LockMode::exclusive, 100ms) == Outcome::timed_out);
  auto another = open_lock(dir / "lock", LockMode::shared);
  CHECK(try_lock(another, LockMode::shared) == Outcome::acquired);
}

TEST_CASE("a waiting writer keeps readers that come after it out, and gets in once those inside leave") {
  TempDir dir;
  const auto path = dir / "lock";
  auto inside = open_lock(path, LockMode::shared);
  REQUIRE(try_lock(inside, LockMode::shared) == Outcome::acquired);
  auto writer = open_lock(path);
  auto writing =
      std::async(std::launch::async, [&] { return writer.acquire(LockMode::exclusive, 600s).value(); });
  // The lock is held shared, yet a reader that comes now is turned away.
  REQUIRE(wait_until_writer_waits(path));
  auto later = open_lock(path, LockMode::shared);
  auto reading =
      std::async(std::launch::async, [&] { return later.acquire(LockMode::shared, 600s).value(); });
  REQUIRE(inside.release());
  CHECK(writing.get() == Outcome::acquired);
  CHECK(reading.wait_for(0s) == std::future_status::timeout);
  REQUIRE(writer.release());
  CHECK(reading.get() == Outcome::acquired);
}

namespace {

std::optional<int> try_slot(LockFile& lock, int slots, Timeout timeout = k_no_wait) {
  auto slot = lock.acquire_slot(slots, timeout);
  REQUIRE_MESSAGE(slot.ok(), (slot.ok() ? "" : slot.error().message()));
  return slot.value();
}

} // namespace

TEST_CASE("a lock has from 1 to k_max_slots slots: any other count is a misuse error") {
  TempDir dir;
  auto lock = open_lock(dir / "lock");
  for (const int slots : {0, -1, protocol::k_max_slots + 1}) {
    auto slot = lock.acquire_slot(slots, k_no_wait);
    REQUIRE_FALSE(slot.ok());
    CHECK(slot.error().kind() == ErrorKind::misuse);
  }
  CHECK(try_slot(lock, protocol::k_max_slots) == 0);
}

TEST_CASE("lock objects take different slots until every slot is held, and a freed one is taken again") {
  TempDir dir;
  auto first = open_lock(dir / "lock");
  auto second = open_lock(dir / "lock");
  auto third = open_lock(dir / "lock");
  REQUIRE(try_slot(first, 2) == 0);
  CHECK(first.slot() == 0);
  CHECK(first.held() == LockMode::exclusive);
  if (!locks_belong_to_open_files()) {
    // The kernel sees one holder for the process: its objects take turns.
    CHECK(try_slot(second, 2) == std::nullopt);
    return;
  }
  REQUIRE(try_slot(second, 2) == 1);
  CHECK(try_slot(third, 2) == std::nullopt);
  CHECK(try_slot(third, 2, 100ms) == std::nullopt);
  REQUIRE(first.release());
  CHECK(first.slot() == std::nullopt);
  CHECK(try_slot(third, 2) == 0);
}

TEST_CASE("one slot is the exclusive lock itself") {
  TempDir dir;
  auto slot_holder = open_lock(dir / "lock");
  REQUIRE(try_slot(slot_holder, 1) == 0);
  auto other = open_lock(dir / "lock");
  CHECK(try_lock(other, LockMode::shared) == Outcome::timed_out);
  CHECK(try_lock(other, LockMode::exclusive) == Outcome::timed_out);
  REQUIRE(slot_holder.release());
  CHECK(try_lock(other, LockMode::exclusive) == Outcome::acquired);
  CHECK(try_slot(slot_holder, 1) == std::nullopt);
}

TEST_CASE("readers share the lock with slot holders, and an exclusive lock waits for both") {
  TempDir dir;
  auto slot_holder = open_lock(dir / "lock");
  REQUIRE(try_slot(slot_holder, 3) == 0);
  auto exclusive = open_lock(dir / "lock");
  CHECK(try_lock(exclusive, LockMode::exclusive) == Outcome::timed_out);
  if (locks_belong_to_open_files()) {
    auto reader = open_lock(dir / "lock", LockMode::shared);
    CHECK(try_lock(reader, LockMode::shared) == Outcome::acquired);
    REQUIRE(slot_holder.release());
    CHECK(try_lock(exclusive, LockMode::exclusive) == Outcome::timed_out);
    REQUIRE(reader.release());
  } else {
    REQUIRE(slot_holder.release());
  }
  REQUIRE(try_lock(exclusive, LockMode::exclusive) == Outcome::acquired);
  CHECK(try_slot(slot_holder, 3) == std::nullopt);
  REQUIRE(exclusive.release());
  CHECK(try_slot(slot_holder, 3) == 0);
}

TEST_CASE("a slot waiter in another thread gets the slot that is freed, whichever it is") {
  TempDir dir;
  if (!locks_belong_to_open_files()) {
    return; // one process holds one slot of a file at a time
  }
  auto first = open_lock(dir / "lock");
  auto second = open_lock(dir / "lock");
  auto third = open_lock(dir / "lock");
  REQUIRE(try_slot(first, 3) == 0);
  REQUIRE(try_slot(second, 3) == 1);
  REQUIRE(try_slot(third, 3) == 2);
  auto waiter = open_lock(dir / "lock");
  auto waiting = std::async(std::launch::async, [&] { return waiter.acquire_slot(3, 600s).value(); });
  REQUIRE(third.release());
  CHECK(waiting.get() == 2);
}

TEST_CASE("a slot waiter that times out leaves the queue to the waiters after it") {
  TempDir dir;
  if (!locks_belong_to_open_files()) {
    return; // one process holds one slot of a file at a time
  }
  auto first = open_lock(dir / "lock");
  auto second = open_lock(dir / "lock");
  REQUIRE(try_slot(first, 2) == 0);
  REQUIRE(try_slot(second, 2) == 1);
  auto waiter = open_lock(dir / "lock");
  CHECK(try_slot(waiter, 2, 200ms) == std::nullopt);
  auto next = open_lock(dir / "lock");
  auto waiting = std::async(std::launch::async, [&] { return next.acquire_slot(2, 600s).value(); });
  REQUIRE(first.release());
  CHECK(waiting.get() == 0);
}
