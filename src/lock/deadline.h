#pragma once

#include <algorithm>
#include <chrono>

#include "lock/lock.h"

namespace fasten {

/// When a wait must be over: never (a Timeout of std::nullopt), after one try
/// (a Timeout of zero or less), or at an instant on `Clock`. A wait of several
/// steps makes one at its start and hands it to every step, so that the steps
/// share the one timeout rather than each getting it anew.
///
/// What a platform's wait call takes (a timespec, a DWORD of milliseconds)
/// is made from when() or left() in that platform's file.
template <typename Clock> class BasicDeadline {
public:
  using TimePoint = typename Clock::time_point;

  /// `timeout` from now. The clock is read only for a timeout of some length:
  /// forever and one try need no instant, and on Linux the first read of the
  /// clock faults in the vDSO's clock pages, which an uncontended lock would
  /// otherwise pay for at every run of fasten.
  explicit BasicDeadline(Timeout timeout) noexcept
      : BasicDeadline(timeout, timeout && timeout->count() > 0 ? Clock::now() : TimePoint{}) {}

  /// `timeout` from `start`, which is taken before the first try so that the
  /// tries count against the timeout.
  BasicDeadline(Timeout timeout, TimePoint start) noexcept {
    if (!timeout) {
      m_kind = Kind::forever;
    } else if (timeout->count() <= 0) {
      m_kind = Kind::one_try;
      m_when = start;
    } else {
      m_kind = Kind::at;
      // Saturated: a timeout of centuries means forever, not an overflow.
      const auto room = TimePoint::max() - start;
      m_when = *timeout >= room ? TimePoint::max()
                                : start + std::chrono::duration_cast<typename Clock::duration>(*timeout);
    }
  }

  /// At the instant `when`, however near or far.
  [[nodiscard]] static BasicDeadline at(TimePoint when) noexcept { return BasicDeadline(Kind::at, when); }

  [[nodiscard]] bool is_forever() const noexcept { return m_kind == Kind::forever; }
  [[nodiscard]] bool is_one_try() const noexcept { return m_kind == Kind::one_try; }

  /// The instant it passes: TimePoint::max() for forever; for one try, an
  /// instant already past (the clock's epoch where none was given).
  [[nodiscard]] TimePoint when() const noexcept { return is_forever() ? TimePoint::max() : m_when; }

  /// The time left, zero once it has passed (at once for one try), and
  /// nanoseconds::max() for forever.
  [[nodiscard]] std::chrono::nanoseconds left() const noexcept {
    if (is_forever()) {
      return std::chrono::nanoseconds::max();
    }
    if (is_one_try()) {
      return std::chrono::nanoseconds(0);
    }
    return std::max(std::chrono::nanoseconds(0), std::chrono::nanoseconds(m_when - Clock::now()));
  }

  [[nodiscard]] bool passed() const noexcept {
    return !is_forever() && left() == std::chrono::nanoseconds(0);
  }

  /// What is left as a Timeout for the next step: std::nullopt for forever.
  [[nodiscard]] Timeout timeout_left() const noexcept {
    return is_forever() ? wait_forever : Timeout(left());
  }

private:
  enum class Kind { forever, one_try, at };
  BasicDeadline(Kind kind, TimePoint when) noexcept : m_kind(kind), m_when(when) {}

  Kind m_kind = Kind::forever;
  TimePoint m_when{};
};

/// A deadline on the clock that measures timeouts in the library.
using Deadline = BasicDeadline<std::chrono::steady_clock>;

} // namespace fasten
