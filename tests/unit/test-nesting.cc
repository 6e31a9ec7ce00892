// What a nested fasten does about its ancestor's hold (src/cli/nesting.h):
// the rules, as functions of what it found.

#include <doctest/doctest.h>

#include "cli/nesting.h"

using namespace fasten;
using namespace fasten::cli;

namespace {

constexpr auto k_shared = LockMode::shared;
constexpr auto k_exclusive = LockMode::exclusive;

} // namespace

TEST_CASE("nothing inherited that holds the lock: it is taken as usual") {
  CHECK(nesting_for(k_exclusive, std::nullopt, false, false) == Nesting::take);
  CHECK(nesting_for(k_shared, std::nullopt, true, true) == Nesting::take);
}

TEST_CASE("an exclusive hold covers every request, a shared hold a shared one") {
  CHECK(nesting_for(k_exclusive, k_exclusive, false, false) == Nesting::reenter);
  CHECK(nesting_for(k_shared, k_exclusive, false, false) == Nesting::reenter);
  CHECK(nesting_for(k_shared, k_shared, false, false) == Nesting::reenter);
}

TEST_CASE("an exclusive request inside a shared hold is an upgrade, refused") {
  CHECK(nesting_for(k_exclusive, k_shared, false, false) == Nesting::refuse_upgrade);
  CHECK(nesting_for(k_exclusive, k_shared, false, true) == Nesting::refuse_upgrade);
}

TEST_CASE("with -o or --slots an exclusive hold is not re-entered, and the request is refused") {
  CHECK(nesting_for(k_exclusive, k_exclusive, false, true) == Nesting::refuse_conflict);
  CHECK(nesting_for(k_shared, k_exclusive, false, true) == Nesting::refuse_conflict);
  CHECK(nesting_for(k_exclusive, k_exclusive, true, false) == Nesting::refuse_conflict);
}

TEST_CASE("a read with -o inside a read hold, and a slot inside one, take the lock as usual") {
  CHECK(nesting_for(k_shared, k_shared, false, true) == Nesting::take);
  CHECK(nesting_for(k_exclusive, k_shared, true, false) == Nesting::take);
}

TEST_CASE("a wait while an ancestor holds the lock is a wait for itself, but a slot's in a shared hold") {
  CHECK(waits_for_itself(LockState::exclusive, false));
  CHECK(waits_for_itself(LockState::shared, false));
  CHECK(waits_for_itself(LockState::exclusive, true));
  CHECK_FALSE(waits_for_itself(LockState::shared, true));
}

TEST_CASE("the ancestor named is the holder farthest up the line, local and with a pid") {
  const std::vector<LockHolder> holders{
      {.pid = 30, .command = "sh -c job"},
      {.pid = 20, .command = "fasten exclusive L sh -c job"},
      {.pid = 99, .command = "unrelated"},
      {.pid = std::nullopt},
      {.pid = 10, .command = "remote", .host = "other-host"},
  };
  const auto found = ancestor_among(holders, {30, 20, 10, 1});
  REQUIRE(found);
  CHECK(*found->pid == 20);
  CHECK_FALSE(ancestor_among(holders, {5, 1}));
  CHECK_FALSE(ancestor_among({}, {30, 20}));
}
