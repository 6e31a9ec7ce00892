// How status tallies the lines of /proc/locks on one file. status-linux.cc
// keeps its tally to itself (an anonymous namespace): as the fuzzer does
// (tests/fuzz/fuzz-proc-locks.cc), this file takes it in whole, and the
// library's copy of that file is then left out of the link.

#include "lock/status-linux.cc"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace fasten;

namespace {

/// The entries of `lines` (lines of /proc/locks), as reading_on keeps them.
std::vector<LockEntry> entries_of(const std::vector<std::string>& lines) {
  std::vector<LockEntry> entries;
  for (const auto& line : lines) {
    auto entry = parse_lock_line(line);
    REQUIRE(entry);
    entries.push_back(*entry);
  }
  return entries;
}

/// A line of /proc/locks: a lock of `kind` (OFDLCK, POSIX) by `pid` on the
/// data byte of file 08:02:131.
std::string data_line(int number, const std::string& kind, const std::string& access, long pid) {
  const auto data = std::to_string(protocol::k_data);
  return std::to_string(number) + ": " + kind + "  ADVISORY  " + access + " " + std::to_string(pid) +
         " 08:02:131 " + data + " " + data;
}

} // namespace

// The kernel hands /proc/locks out a page at a time and finds its place
// again by count: a lock that goes away in an earlier page meanwhile makes
// the next page repeat a line. The data byte has one writer at most.
TEST_CASE("a writer's line that a reading of /proc/locks repeated is one hold") {
  for (const std::string kind : {"OFDLCK", "POSIX"}) {
    CAPTURE(kind);
    const auto tally = tally_of(entries_of({data_line(7, kind, "WRITE", kind == "POSIX" ? 4211 : -1),
                                            data_line(8, kind, "WRITE", kind == "POSIX" ? 4211 : -1)}));
    CHECK(tally.status.state == LockState::exclusive);
    CHECK(tally.status.holds == 1);
    CHECK(tally.open_file_holds == (kind == "OFDLCK" ? 1 : 0));
  }
}

// A reading that began before a classic lock changed hands may show the
// writer before and the writer after: one hold, one process named.
TEST_CASE("two classic writers' lines in one reading are one hold of one process") {
  const auto tally =
      tally_of(entries_of({data_line(7, "POSIX", "WRITE", 4211), data_line(8, "POSIX", "WRITE", 4212)}));
  CHECK(tally.status.holds == 1);
  CHECK(tally.pids == std::set<long>{4211});
}

TEST_CASE("readers' lines each count: two open files that read look alike") {
  const auto tally =
      tally_of(entries_of({data_line(7, "OFDLCK", "READ", -1), data_line(8, "OFDLCK", "READ", -1)}));
  CHECK(tally.status.state == LockState::shared);
  CHECK(tally.status.holds == 2);
  CHECK(tally.open_file_holds == 2);
}
