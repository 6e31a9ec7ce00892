#pragma once

#include <cstddef>
#include <utility>

#include "lock/result.h"

namespace fasten {

/// How many readings fullest_reading takes: on a quiet table, and at most
/// when it changes between readings.
constexpr int k_readings = 4;
constexpr int k_churn_readings = 16;

/// Of a few readings of a table that drops lines that were there all along
/// while it changes as it is read (as /proc/locks does: status-linux.cc),
/// the one that found the most entries. `read` returns a Result of a
/// reading with `entries` (a container: those that count) and `lines` (how
/// many the table had in all). A table whose number of lines changes from one
/// reading to the next is changing as it is read, and each reading may have
/// missed an entry: then it is read up to k_churn_readings times.
template <typename Read> auto fullest_reading(Read read) -> decltype(read()) {
  auto most = FASTEN_TRY(read());
  std::size_t lines = most.lines;
  bool churn = false;
  for (int reading = 1; reading < (churn ? k_churn_readings : k_readings); ++reading) {
    auto next = FASTEN_TRY(read());
    churn = churn || next.lines != lines;
    lines = next.lines;
    if (next.entries.size() >= most.entries.size()) {
      most = std::move(next);
    }
  }
  return most;
}

} // namespace fasten
