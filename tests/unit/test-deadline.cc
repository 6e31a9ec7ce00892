// Deadline (src/lock/deadline.h) on a fake clock that counts its reads: a
// wait that needs no instant must not read the clock, whose first read costs
// fasten a page fault or two at every run.

#include <doctest/doctest.h>

#include <chrono>

#include "lock/deadline.h"

using namespace fasten;
using namespace std::chrono_literals;

namespace {

/// A steady clock that stands still at `g_now` and counts how often it is read.
struct CountingClock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<CountingClock>;
  static constexpr bool is_steady = true;
  static inline int reads = 0;
  static inline time_point at{std::chrono::seconds(1000)};
  static time_point now() noexcept {
    ++reads;
    return at;
  }
};

using CountedDeadline = BasicDeadline<CountingClock>;

} // namespace

TEST_CASE("a deadline of forever or of one try reads no clock, not even when asked what is left") {
  CountingClock::reads = 0;
  const CountedDeadline forever(wait_forever);
  const CountedDeadline one_try(Timeout(0ns));
  CHECK(forever.is_forever());
  CHECK(forever.timeout_left() == wait_forever);
  CHECK(one_try.is_one_try());
  CHECK(one_try.left() == 0ns);
  CHECK(one_try.timeout_left() == Timeout(0ns));
  CHECK(one_try.passed());
  CHECK(one_try.when() <= CountingClock::at);
  CHECK(CountingClock::reads == 0);
}

TEST_CASE("a deadline with a timeout counts it from the clock's reading when it is made") {
  CountingClock::reads = 0;
  const CountedDeadline deadline(Timeout(5s));
  CHECK(CountingClock::reads == 1);
  CHECK(deadline.when() == CountingClock::at + 5s);
  CountingClock::at += 2s;
  CHECK(deadline.left() == 3s);
  CountingClock::at += 4s;
  CHECK(deadline.passed());
  CountingClock::at -= 6s;
}
