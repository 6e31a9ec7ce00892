#pragma once

#include <time.h>

#include <chrono>

namespace fasten {

/// A clock_gettime clock as a std::chrono clock, for deadlines
/// (BasicDeadline) on the clock a wait is really measured on: CLOCK_MONOTONIC
/// for the file lock's timer, CLOCK_BOOTTIME (which runs on while the machine
/// is suspended, as a lease's TTL does on the etcd server) for etcd.
template <clockid_t Id> struct LinuxClock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<LinuxClock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept {
    timespec now{};
    clock_gettime(Id, &now);
    return time_point(std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec));
  }
};

} // namespace fasten
