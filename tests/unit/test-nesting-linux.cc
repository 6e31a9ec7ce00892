// Nested holds in the library on Linux (src/lock/nesting.h): the proof is
// what an open file of this process's holds, and an exclusive release waits
// for the holds re-entered in it. In one process: a LockFile's descriptor is
// as much this process's own as an inherited one.

#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "lock/nesting.h"
#include "lock/protocol.h"
#include "support.h"

using namespace fasten;
using namespace fasten::test;

namespace {

/// Whether /proc/locks lists a request that waits on byte `byte`: the
/// readiness signal that a release blocks.
bool someone_waits_on(std::int64_t byte) {
  std::ifstream locks("/proc/locks");
  const std::string range = " " + std::to_string(byte) + " " + std::to_string(byte);
  for (std::string line; std::getline(locks, line);) {
    if (line.find("->") != std::string::npos && line.ends_with(range)) {
      return true;
    }
  }
  return false;
}

std::optional<InheritedHold> inherited(const std::filesystem::path& path) {
  auto found = find_inherited_hold(path);
  REQUIRE(found.ok());
  return found.value();
}

/// Holds `outer` exclusive and re-enters that hold shared, as a nested
/// fasten does.
std::unique_ptr<Lock> hold_and_reenter(LockFile& outer, const std::filesystem::path& path) {
  REQUIRE(try_lock(outer, LockMode::exclusive) == Outcome::acquired);
  auto nested = reenter(*inherited(path), LockMode::shared, path);
  REQUIRE(nested.ok());
  REQUIRE(nested.value());
  REQUIRE(nested.value()->acquire(LockMode::shared, wait_forever, {}).ok());
  return std::move(nested).value();
}

} // namespace

TEST_CASE("an open file that holds the lock proves it; one that holds nothing proves nothing") {
  TempDir dir;
  auto idle = open_lock(dir / "lock");
  CHECK_FALSE(inherited(dir / "lock"));
  if (!nested_holds_supported()) {
    return; // classic locks: a process's descriptors never prove a hold
  }
  auto outer = open_lock(dir / "lock");
  REQUIRE(try_lock(outer, LockMode::exclusive) == Outcome::acquired);
  const auto found = inherited(dir / "lock");
  REQUIRE(found);
  CHECK(found->descriptor == outer.native_handle());
  CHECK(found->mode == LockMode::exclusive);
  CHECK_FALSE(inherited(dir / "other"));
}

TEST_CASE("an exclusive release waits until the hold re-entered in it is let go") {
  if (!nested_holds_supported()) {
    return;
  }
  TempDir dir;
  auto opened = LockFile::open(dir / "lock", OpenOptions{.access = LockMode::exclusive,
                                                         .create = true,
                                                         .create_mode = std::nullopt,
                                                         .handed_to_commands = true});
  REQUIRE(opened.ok());
  auto& outer = opened.value();
  auto nested = hold_and_reenter(outer, dir / "lock");
  auto releasing = std::async(std::launch::async, [&] { return outer.release().ok(); });
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (!someone_waits_on(protocol::k_nested) && Clock::now() < deadline) {
    std::this_thread::yield();
  }
  CHECK(releasing.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  auto other = open_lock(dir / "lock");
  CHECK(try_lock(other, LockMode::exclusive) == Outcome::timed_out);
  CHECK(nested->release().ok());
  CHECK(releasing.get());
  CHECK(try_lock(other, LockMode::exclusive) == Outcome::acquired);
}

TEST_CASE("the release of a file that went to no command is one unlock, whoever holds k_nested") {
  if (!nested_holds_supported()) {
    return;
  }
  TempDir dir;
  auto outer = open_lock(dir / "lock"); // as a library user opens it
  auto nested = hold_and_reenter(outer, dir / "lock");
  auto releasing = std::async(std::launch::async, [&] { return outer.release().ok(); });
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (releasing.wait_for(std::chrono::seconds(0)) != std::future_status::ready &&
         !someone_waits_on(protocol::k_nested) && Clock::now() < deadline) {
    std::this_thread::yield();
  }
  CHECK_FALSE(someone_waits_on(protocol::k_nested));
  CHECK(nested->release().ok()); // ends a release that waits for it after all
  CHECK(releasing.get());
}

TEST_CASE("a shared hold re-entered holds the lock shared by itself") {
  if (!nested_holds_supported()) {
    return;
  }
  TempDir dir;
  auto outer = open_lock(dir / "lock", LockMode::shared);
  REQUIRE(try_lock(outer, LockMode::shared) == Outcome::acquired);
  const auto found = inherited(dir / "lock");
  REQUIRE(found);
  CHECK(found->mode == LockMode::shared);
  CHECK_FALSE(reenter(*found, LockMode::exclusive, dir / "lock").ok());
  auto nested = reenter(*found, LockMode::shared, dir / "lock");
  REQUIRE(nested.ok());
  REQUIRE(nested.value());
  CHECK(outer.release().ok());
  auto writer = open_lock(dir / "lock");
  CHECK(try_lock(writer, LockMode::exclusive) == Outcome::timed_out);
  CHECK(nested.value()->release().ok());
  CHECK(try_lock(writer, LockMode::exclusive) == Outcome::acquired);
}

TEST_CASE("a hold that is being let go is not re-entered") {
  if (!nested_holds_supported()) {
    return;
  }
  TempDir dir;
  auto outer = open_lock(dir / "lock");
  REQUIRE(try_lock(outer, LockMode::exclusive) == Outcome::acquired);
  const auto found = inherited(dir / "lock");
  REQUIRE(found);
  // As a release does first: k_nested exclusive, through the holder's open file.
  REQUIRE(platform::byte_locks()
              .try_lock(outer.native_handle(), protocol::k_nested, LockMode::exclusive, dir / "lock")
              .value() == Outcome::acquired);
  auto nested = reenter(*found, LockMode::exclusive, dir / "lock");
  REQUIRE(nested.ok());
  CHECK_FALSE(nested.value());
}
