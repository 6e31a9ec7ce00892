// The lock protocol (src/lock/protocol.cc) over a fake of the platform's byte
// locks: which bytes it takes in which order, without a kernel lock, as
// ninja fakes its disk. Threads wait in the fake; the tests wait until the
// fake says they do (waiting()), never sleep to guess.

#include <doctest/doctest.h>

#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "lock/protocol.h"

using namespace fasten;
using namespace fasten::protocol;

namespace {

/// One lock table of byte locks on one file, opened as several handles.
class FakeByteLocks final : public ByteLocks {
public:
  Result<Outcome> try_lock(NativeHandle file, std::int64_t byte, LockMode mode,
                           const std::filesystem::path&) override {
    std::lock_guard guard(m_mutex);
    return take(file, byte, mode) ? Outcome::acquired : Outcome::timed_out;
  }

  Result<Outcome> wait_lock(NativeHandle file, std::int64_t byte, LockMode mode, const Deadline& deadline,
                            const std::filesystem::path&) override {
    std::unique_lock guard(m_mutex);
    const bool got = wait(guard, {byte}, deadline, [&] { return take(file, byte, mode); });
    return got ? Outcome::acquired : Outcome::timed_out;
  }

  Result<std::optional<int>> wait_any(NativeHandle file, std::int64_t first, int count,
                                      const Deadline& deadline, const std::filesystem::path&) override {
    std::unique_lock guard(m_mutex);
    std::vector<std::int64_t> bytes;
    for (int i = 0; i < count; ++i) {
      bytes.push_back(first + i);
    }
    std::optional<int> won;
    const auto take_any = [&] {
      for (int i = 0; i < count && !won; ++i) {
        won = take(file, first + i, LockMode::exclusive) ? std::optional<int>(i) : std::nullopt;
      }
      return won.has_value();
    };
    wait(guard, bytes, deadline, take_any);
    return won;
  }

  Result<Seen> probe(NativeHandle file, std::int64_t byte, const std::filesystem::path&) override {
    std::lock_guard guard(m_mutex);
    if (!m_can_probe) {
      return Seen::unknown;
    }
    Seen seen = Seen::free;
    for (const auto& [holder, mode] : m_held[byte]) {
      if (holder != file) {
        seen = mode == LockMode::exclusive ? Seen::exclusive : Seen::shared;
      }
    }
    return seen;
  }

  Result<void> unlock(NativeHandle file, std::int64_t byte, const std::filesystem::path&) override {
    std::lock_guard guard(m_mutex);
    m_held[byte].erase(file);
    m_changed.notify_all();
    return {};
  }

  Result<void> unlock_protocol(NativeHandle file, const std::filesystem::path&) override {
    std::lock_guard guard(m_mutex);
    for (auto& [byte, holders] : m_held) {
      holders.erase(file);
    }
    m_changed.notify_all();
    return {};
  }

  void ring(NativeHandle file) override {
    std::lock_guard guard(m_mutex);
    std::set<std::int64_t> held;
    for (const auto& [byte, holders] : m_held) {
      if (holders.count(file) != 0) {
        held.insert(byte);
      }
    }
    m_rings.push_back(held);
  }

  /// What the handle held at each ring, in order.
  std::vector<std::set<std::int64_t>> rings() {
    std::lock_guard guard(m_mutex);
    return m_rings;
  }

  /// As Windows: no look at a lock without taking it.
  void cannot_probe() { m_can_probe = false; }

  /// Waits until `count` waits in the fake are on `byte`.
  void wait_for_waiters(std::int64_t byte, int count = 1) {
    std::unique_lock guard(m_mutex);
    m_changed.wait(guard, [&] { return m_waiting[byte] >= count; });
  }

  /// The bytes that `file` holds.
  std::set<std::int64_t> held_by(NativeHandle file) {
    std::lock_guard guard(m_mutex);
    std::set<std::int64_t> bytes;
    for (const auto& [byte, holders] : m_held) {
      if (holders.count(file) != 0) {
        bytes.insert(byte);
      }
    }
    return bytes;
  }

  /// Every byte locked, in order, as "handle byte".
  std::vector<std::pair<NativeHandle, std::int64_t>> taken() {
    std::lock_guard guard(m_mutex);
    return m_taken;
  }

private:
  /// Under m_mutex.
  bool take(NativeHandle file, std::int64_t byte, LockMode mode) {
    for (const auto& [holder, held] : m_held[byte]) {
      if (holder != file && (mode == LockMode::exclusive || held == LockMode::exclusive)) {
        return false;
      }
    }
    m_held[byte][file] = mode;
    m_taken.emplace_back(file, byte);
    return true;
  }

  template <typename Take>
  bool wait(std::unique_lock<std::mutex>& guard, const std::vector<std::int64_t>& bytes,
            const Deadline& deadline, Take take) {
    for (const auto byte : bytes) {
      ++m_waiting[byte];
    }
    m_changed.notify_all();
    const bool got = deadline.is_forever() ? (m_changed.wait(guard, take), true)
                                           : m_changed.wait_until(guard, deadline.when(), take);
    for (const auto byte : bytes) {
      --m_waiting[byte];
    }
    return got;
  }

  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::map<std::int64_t, std::map<NativeHandle, LockMode>> m_held;
  std::map<std::int64_t, int> m_waiting;
  std::vector<std::pair<NativeHandle, std::int64_t>> m_taken;
  std::vector<std::set<std::int64_t>> m_rings;
  bool m_can_probe = true;
};

const std::filesystem::path k_path = "lock";
const Deadline k_one_try{Timeout(std::chrono::nanoseconds(0))};
const Deadline k_forever{wait_forever};

NativeHandle handle(int number) {
  return handle_from_number(number);
}

Outcome lock_now(FakeByteLocks& bytes, NativeHandle file, LockMode mode) {
  return acquire(bytes, file, mode, k_one_try, k_path).value();
}

std::optional<int> slot_now(FakeByteLocks& bytes, NativeHandle file, int slots) {
  return acquire_slot(bytes, file, slots, k_one_try, k_path).value();
}

} // namespace

TEST_CASE("protocol: an uncontended lock takes k_data alone, and unlock leaves nothing held") {
  FakeByteLocks bytes;
  const auto reader = handle(1);
  const auto writer = handle(2);
  REQUIRE(lock_now(bytes, reader, LockMode::shared) == Outcome::acquired);
  CHECK(bytes.held_by(reader) == std::set<std::int64_t>{k_data});
  CHECK(lock_now(bytes, writer, LockMode::exclusive) == Outcome::timed_out);
  CHECK(bytes.held_by(writer).empty());
  REQUIRE(release(bytes, reader, k_path));
  CHECK(bytes.held_by(reader).empty());
  REQUIRE(lock_now(bytes, writer, LockMode::exclusive) == Outcome::acquired);
  CHECK(bytes.held_by(writer) == std::set<std::int64_t>{k_data});
}

TEST_CASE(
    "protocol: a waiting writer holds back readers that come after it, and gets in once those inside leave") {
  FakeByteLocks bytes;
  const auto inside = handle(1);
  const auto writer = handle(2);
  const auto later = handle(3);
  REQUIRE(lock_now(bytes, inside, LockMode::shared) == Outcome::acquired);
  auto writing = std::async(std::launch::async, [&] {
    return acquire(bytes, writer, LockMode::exclusive, k_forever, k_path).value();
  });
  bytes.wait_for_waiters(k_data);
  CHECK(bytes.held_by(writer) == std::set<std::int64_t>{k_turnstile});
  // A reader that comes now would share k_data with the one inside, but the
  // writer in the turnstile keeps it out.
  CHECK(lock_now(bytes, later, LockMode::shared) == Outcome::timed_out);
  auto reading = std::async(
      std::launch::async, [&] { return acquire(bytes, later, LockMode::shared, k_forever, k_path).value(); });
  bytes.wait_for_waiters(k_turnstile);
  REQUIRE(release(bytes, inside, k_path));
  CHECK(writing.get() == Outcome::acquired);
  CHECK(bytes.held_by(writer) == std::set<std::int64_t>{k_data});
  CHECK(bytes.held_by(later).count(k_data) == 0);
  REQUIRE(release(bytes, writer, k_path));
  CHECK(reading.get() == Outcome::acquired);
  CHECK(bytes.held_by(later) == std::set<std::int64_t>{k_data});
}

TEST_CASE("protocol: readers queued behind a writer keep the next writer out until they are in") {
  FakeByteLocks bytes;
  const auto first = handle(1);
  const auto reader = handle(2);
  const auto next = handle(3);
  REQUIRE(lock_now(bytes, first, LockMode::exclusive) == Outcome::acquired);
  auto reading = std::async(std::launch::async, [&] {
    return acquire(bytes, reader, LockMode::shared, k_forever, k_path).value();
  });
  bytes.wait_for_waiters(k_data);
  CHECK(bytes.held_by(reader) == std::set<std::int64_t>{k_turnstile});
  CHECK(lock_now(bytes, next, LockMode::exclusive) == Outcome::timed_out);
  auto writing = std::async(std::launch::async, [&] {
    return acquire(bytes, next, LockMode::exclusive, k_forever, k_path).value();
  });
  bytes.wait_for_waiters(k_turnstile);
  REQUIRE(release(bytes, first, k_path));
  CHECK(reading.get() == Outcome::acquired);
  CHECK(bytes.held_by(reader) == std::set<std::int64_t>{k_data});
  bytes.wait_for_waiters(k_data);
  REQUIRE(release(bytes, reader, k_path));
  CHECK(writing.get() == Outcome::acquired);
  CHECK(bytes.held_by(next) == std::set<std::int64_t>{k_data});
}

TEST_CASE("protocol: where nobody can look at a lock, everyone passes through the turnstile in order") {
  FakeByteLocks bytes;
  bytes.cannot_probe();
  const auto reader = handle(1);
  REQUIRE(lock_now(bytes, reader, LockMode::shared) == Outcome::acquired);
  const auto taken = bytes.taken();
  REQUIRE(taken.size() == 2);
  CHECK(taken[0].second == k_turnstile);
  CHECK(taken[1].second == k_data);
  CHECK(bytes.held_by(reader) == std::set<std::int64_t>{k_data});
}

TEST_CASE(
    "protocol: a slot holder holds its slot, the count of slots and k_data shared, and shares with readers") {
  FakeByteLocks bytes;
  const auto holder = handle(1);
  const auto reader = handle(2);
  REQUIRE(slot_now(bytes, holder, 3) == 0);
  CHECK(bytes.held_by(holder) == std::set<std::int64_t>{k_slots, k_slot_counts + 3, k_data});
  CHECK(lock_now(bytes, reader, LockMode::shared) == Outcome::acquired);
  REQUIRE(release_slot(bytes, holder, 0, 3, k_path));
  CHECK(bytes.held_by(holder).empty());
}

TEST_CASE("protocol: a slot holder's release rings once, after it has let go of every byte") {
  FakeByteLocks bytes;
  const auto holder = handle(1);
  REQUIRE(slot_now(bytes, holder, 2) == 0);
  CHECK(bytes.rings().empty());
  REQUIRE(release_slot(bytes, holder, 0, 2, k_path));
  CHECK(bytes.rings() == std::vector<std::set<std::int64_t>>{{}});
}

TEST_CASE("protocol: a slot given back because the lock behind it was not had in time rings") {
  FakeByteLocks bytes;
  const auto writer = handle(1);
  const auto holder = handle(2);
  REQUIRE(lock_now(bytes, writer, LockMode::exclusive) == Outcome::acquired);
  CHECK(slot_now(bytes, holder, 2) == std::nullopt);
  CHECK(bytes.rings() == std::vector<std::set<std::int64_t>>{{}});
}

TEST_CASE("protocol: a freed slot goes to the waiter that queued first, and a single try does not pass it") {
  FakeByteLocks bytes;
  const auto a = handle(1);
  const auto b = handle(2);
  const auto first = handle(3);
  const auto second = handle(4);
  REQUIRE(slot_now(bytes, a, 2) == 0);
  REQUIRE(slot_now(bytes, b, 2) == 1);
  std::optional<int> first_slot;
  std::thread waiting_first([&] { first_slot = acquire_slot(bytes, first, 2, k_forever, k_path).value(); });
  bytes.wait_for_waiters(k_slots);
  bytes.wait_for_waiters(k_slots + 1);
  // The count of slots is taken before the wait, off a freed slot's way.
  CHECK(bytes.held_by(first) == std::set<std::int64_t>{k_slot_queue, k_slot_counts + 2});
  std::optional<int> second_slot;
  std::thread waiting_second(
      [&] { second_slot = acquire_slot(bytes, second, 2, k_forever, k_path).value(); });
  bytes.wait_for_waiters(k_slot_queue);
  REQUIRE(release_slot(bytes, b, 1, 2, k_path));
  waiting_first.join();
  CHECK(first_slot == 1);
  CHECK(bytes.held_by(first) == std::set<std::int64_t>{k_slots + 1, k_slot_counts + 2, k_data});
  bytes.wait_for_waiters(k_slots);
  REQUIRE(release_slot(bytes, a, 0, 2, k_path));
  waiting_second.join();
  CHECK(second_slot == 0);
}

TEST_CASE("protocol: a newcomer does not take a free slot while another waiter queues for one") {
  FakeByteLocks bytes;
  const auto queued = handle(1);
  const auto newcomer = handle(2);
  REQUIRE(bytes.try_lock(queued, k_slot_queue, LockMode::exclusive, k_path).value() == Outcome::acquired);
  CHECK(slot_now(bytes, newcomer, 2) == std::nullopt);
  CHECK(bytes.held_by(newcomer).empty());
  REQUIRE(bytes.unlock(queued, k_slot_queue, k_path));
  CHECK(slot_now(bytes, newcomer, 2) == 0);
}

TEST_CASE("protocol: a writer drains slot holders and keeps new ones out, who give their slot back") {
  FakeByteLocks bytes;
  const auto holder = handle(1);
  const auto writer = handle(2);
  const auto newcomer = handle(3);
  REQUIRE(slot_now(bytes, holder, 2) == 0);
  auto writing = std::async(std::launch::async, [&] {
    return acquire(bytes, writer, LockMode::exclusive, k_forever, k_path).value();
  });
  bytes.wait_for_waiters(k_data);
  CHECK(slot_now(bytes, newcomer, 2) == std::nullopt);
  CHECK(bytes.held_by(newcomer).empty());
  REQUIRE(release_slot(bytes, holder, 0, 2, k_path));
  CHECK(writing.get() == Outcome::acquired);
  CHECK(bytes.held_by(writer) == std::set<std::int64_t>{k_data});
}

TEST_CASE("protocol: a writer waiting is seen in the turnstile, a reader queued there is not") {
  FakeByteLocks bytes;
  const auto holder = handle(1);
  const auto writer = handle(2);
  const auto looker = handle(3);
  REQUIRE(lock_now(bytes, holder, LockMode::shared) == Outcome::acquired);
  CHECK_FALSE(writer_waiting(bytes, looker, k_path));
  auto writing = std::async(std::launch::async, [&] {
    return acquire(bytes, writer, LockMode::exclusive, k_forever, k_path).value();
  });
  bytes.wait_for_waiters(k_data);
  CHECK(writer_waiting(bytes, looker, k_path));
  REQUIRE(release(bytes, holder, k_path));
  CHECK(writing.get() == Outcome::acquired);
  CHECK_FALSE(writer_waiting(bytes, looker, k_path));
}
