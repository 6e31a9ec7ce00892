#include <doctest/doctest.h>

#include <fcntl.h>

#include <atomic>
#include <thread>
#include <vector>

#include "cli/status-command.h"
#include "holder-posix.h"
#include "lock/fullest-reading.h"
#include "lock/protocol.h"
#include "lock/status.h"
#include "support.h"

using namespace fasten;
using namespace fasten::test;

TEST_CASE("status sees a free lock, and the holder of an exclusive one") {
  TempDir dir;
  const auto path = dir / "lock";
  auto missing = query_status(path);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind() == ErrorKind::open);
  CHECK_FALSE(std::filesystem::exists(path));

  Holder holder(path, LockMode::exclusive);
  REQUIRE(holder.held());
  auto status = query_status(path);
  REQUIRE(status.ok());
  CHECK(status->state == LockState::exclusive);
  CHECK(status->holds == 1);
  CHECK(status->waiting == 0);
  REQUIRE(status->holders.size() == 1);
  CHECK(status->holders[0].pid == std::optional<int>(holder.pid()));
  CHECK(status->holders[0].command.find("unit-tests") != std::string::npos);

  holder.release();
  status = query_status(path);
  REQUIRE(status.ok());
  CHECK(status->state == LockState::free);
  CHECK(status->holders.empty());
}

TEST_CASE("status counts readers") {
  TempDir dir;
  const auto path = dir / "lock";
  Holder first(path, LockMode::shared);
  Holder second(path, LockMode::shared);
  REQUIRE(first.held());
  REQUIRE(second.held());
  auto status = query_status(path);
  REQUIRE(status.ok());
  CHECK(status->state == LockState::shared);
  CHECK(status->holds == 2);
  CHECK(status->holders.size() == 2);
}

TEST_CASE("the status line and JSON say the state, the holders and the waiters") {
  LockStatus status;
  CHECK(cli::describe_status("/run/x.lock", status) == "/run/x.lock: free");
  CHECK(cli::status_json("/run/x.lock", status) ==
        R"({"path": "/run/x.lock", "state": "free", "holds": 0, "holders": [], "waiting": 0})");

  status.state = LockState::exclusive;
  status.holds = 1;
  status.holders = {LockHolder{4211, "backup.sh --full"}};
  status.waiting = 2;
  CHECK(cli::describe_status("/run/backup.lock", status) ==
        "/run/backup.lock: exclusive, held by pid 4211 (backup.sh --full); 2 waiting");
  CHECK(
      cli::status_json("/run/backup.lock", status) ==
      R"({"path": "/run/backup.lock", "state": "exclusive", "holds": 1, "holders": [{"pid": 4211, "command": "backup.sh --full"}], "waiting": 2})");

  status.state = LockState::shared;
  status.holds = 3;
  status.holders = {LockHolder{1, "a"}, LockHolder{std::nullopt, ""}, LockHolder{3, "say \"hi\"\n"}};
  status.waiting = 0;
  CHECK(cli::describe_status("l", status) ==
        "l: shared by 3, held by pid 1 (a), a process that cannot be seen and pid 3 (say \"hi\"\\n)");
  CHECK(
      cli::status_json("l", status) ==
      R"({"path": "l", "state": "shared", "holds": 3, "holders": [{"pid": 1, "command": "a"}, {"pid": null, "command": null}, {"pid": 3, "command": "say \"hi\"\n"}], "waiting": 0})");
}

TEST_CASE("the status line says no slots held where the slot holders wait, and JSON says 0 of them") {
  LockStatus status;
  status.state = LockState::exclusive;
  status.holds = 1;
  status.holders = {LockHolder{4211, "fasten write L"}};
  status.waiting = 2;
  status.slots = 3;
  CHECK(cli::describe_status("L", status) == "L: exclusive, held by pid 4211 (fasten write L); 2 waiting");
  CHECK(
      cli::status_json("L", status) ==
      R"({"path": "L", "state": "exclusive", "holds": 1, "holders": [{"pid": 4211, "command": "fasten write L"}], "waiting": 2, "slots": 3, "slots_held": 0})");

  status.state = LockState::shared;
  status.holders = {LockHolder{7, "r"}};
  CHECK(cli::describe_status("L", status) == "L: shared by 1, held by pid 7 (r); 2 waiting");
  status.holds = 2;
  status.slots_held = 1;
  status.holders = {LockHolder{7, "r"}, LockHolder{8, "s", {}, 0}};
  CHECK(cli::describe_status("L", status) ==
        "L: 1 of 3 slots held and shared by 1, held by pid 7 (r) and pid 8 (s) in slot 0; 2 waiting");
}

TEST_CASE("the status line and JSON say which etcd holders vanished without letting go, and for how long") {
  LockStatus status;
  status.vanished = {{.kind = VanishedHolder::Kind::writer, .ttl = std::chrono::seconds(30)}};
  CHECK(
      cli::describe_status("etcd://e/L", status) ==
      "etcd://e/L: free; 1 holder vanished without letting go (a writer): whoever it excludes waits out its "
      "TTL (30 s) before going in");
  CHECK(
      cli::status_json("etcd://e/L", status) ==
      R"({"path": "etcd://e/L", "state": "free", "holds": 0, "holders": [], "waiting": 0, "vanished": [{"kind": "writer", "ttl": 30}]})");

  status.state = LockState::shared;
  status.holds = 1;
  status.holders = {LockHolder{7, "r", "db1"}};
  status.waiting = 1;
  status.vanished = {{.kind = VanishedHolder::Kind::reader, .ttl = std::chrono::seconds(5)},
                     {.kind = VanishedHolder::Kind::slot, .ttl = std::chrono::seconds(9)},
                     {.kind = VanishedHolder::Kind::reader, .ttl = std::chrono::seconds(5)}};
  CHECK(cli::describe_status("etcd://e/L", status) ==
        "etcd://e/L: shared by 1, held by pid 7 on db1 (r); 1 waiting; 3 holders vanished without letting go "
        "(2 "
        "readers and a slot holder): whoever they exclude waits out their longest TTL (9 s) before going in");
  CHECK(
      cli::status_json("etcd://e/L", status)
          .ends_with(
              R"("waiting": 1, "vanished": [{"kind": "reader", "ttl": 5}, {"kind": "slot", "ttl": 9}, {"kind": "reader", "ttl": 5}]})"));
}

TEST_CASE("the status line escapes the bytes of paths and command lines, and JSON carries them") {
  LockStatus status;
  status.state = LockState::shared;
  status.holds = 1;
  status.holders = {LockHolder{7, "sh \xff\x1b]0;PWNED\a\x1b[2J"}};
  CHECK(cli::describe_status("bad\xff.lock", status) ==
        "bad\\xff.lock: shared by 1, held by pid 7 (sh \\xff\\e]0;PWNED\\a\\e[2J)");
  CHECK(
      cli::status_json("bad\xff.lock", status) ==
      R"({"path": "bad\udcff.lock", "state": "shared", "holds": 1, "holders": [{"pid": 7, "command": "sh \udcff\u001b]0;PWNED\u0007\u001b[2J"}], "waiting": 0})");
}

TEST_CASE("status does not list the process that asks, though its hold counts") {
  TempDir dir;
  const auto path = dir / "lock";
  auto lock = open_lock(path);
  REQUIRE(lock.acquire(LockMode::exclusive, std::chrono::seconds(1)).value() == Outcome::acquired);
  auto status = query_status(path);
  REQUIRE(status.ok());
  CHECK(status->state == LockState::exclusive);
  CHECK(status->holds == 1);
  CHECK(status->holders.empty());
}

TEST_CASE("status counts the head of the slot queue as one waiter by the queue byte it holds") {
  // Between its waits on a slot byte, while it tries the others, the head
  // of the slot queue shows only by the queue byte.
  if (!locks_belong_to_open_files()) {
    return; // the process that asks would hide its own classic lock
  }
  TempDir dir;
  const auto path = dir / "lock";
  auto lock = open_lock(path);
  struct flock queue {};
  queue.l_type = F_WRLCK;
  queue.l_whence = SEEK_SET;
  queue.l_start = protocol::k_slot_queue;
  queue.l_len = 1;
  REQUIRE(fcntl(lock.native_handle(), F_OFD_SETLK, &queue) == 0);
  auto status = query_status(path);
  REQUIRE(status.ok());
  CHECK(status->waiting == 1);
  CHECK(status->state == LockState::free);
}

namespace {

/// A reading for fullest_reading: the entries that count, of `lines` in all.
struct FakeReading {
  std::vector<int> entries;
  std::size_t lines = 0;
};

} // namespace

TEST_CASE("of readings of a changing table, the fullest is taken, after more readings while it changes") {
  // The holder's line (7) is missed while other lines come and go: four
  // readings all miss it, the sixth finds it.
  std::vector<FakeReading> table{{{}, 10}, {{}, 11}, {{}, 9}, {{}, 12}, {{}, 10}, {{7}, 11}, {{}, 10}};
  std::size_t read = 0;
  const auto reading =
      fullest_reading([&]() -> Result<FakeReading> { return table.at(read++ % table.size()); });
  REQUIRE(reading.ok());
  CHECK(reading->entries == std::vector<int>{7});
  CHECK(read == static_cast<std::size_t>(k_churn_readings));
  // A quiet table: four readings, all the same.
  read = 0;
  table = {{{7}, 10}};
  CHECK(fullest_reading([&]() -> Result<FakeReading> { return table.at(0 * read++); })->entries.size() == 1);
  CHECK(read == static_cast<std::size_t>(k_readings));
  // An error ends the readings.
  CHECK_FALSE(
      fullest_reading([]() -> Result<FakeReading> { return Error(ErrorKind::system, "x", "y"); }).ok());
}

TEST_CASE("status does not miss a holder while many other locks come and go") {
  TempDir dir;
  const auto path = dir / "lock";
  Holder holder(path, LockMode::exclusive);
  REQUIRE(holder.held());
  // Locks taken after the holder's come before it in /proc/locks, which the
  // kernel hands out a page at a time: enough of them, coming and going, to
  // shift the holder's line from one page to the next under a reader.
  std::atomic<bool> done{false};
  std::vector<std::thread> churners;
  for (int t = 0; t < 2; ++t) {
    churners.emplace_back([&dir, &done, t] {
      std::vector<LockFile> files;
      for (int i = 0; i < 150; ++i) {
        files.push_back(open_lock(dir / ("churn-" + std::to_string(t) + "-" + std::to_string(i))));
      }
      while (!done) {
        for (auto& file : files) {
          (void)file.acquire(LockMode::exclusive, std::chrono::nanoseconds(0));
        }
        for (auto& file : files) {
          (void)file.release();
        }
      }
    });
  }
  int missed = 0;
  for (int i = 0; i < 200; ++i) {
    const auto status = query_status(path);
    REQUIRE(status.ok());
    missed += status->state == LockState::free ? 1 : 0;
  }
  done = true;
  for (auto& churner : churners) {
    churner.join();
  }
  CHECK(missed == 0);
}

TEST_CASE("status gives each holder's parent, by which a hold's processes are folded into one") {
  TempDir dir;
  const auto path = dir / "lock";
  Holder holder(path, LockMode::exclusive);
  REQUIRE(holder.held());
  const auto status = query_status(path);
  REQUIRE(status.ok());
  REQUIRE(status->holders.size() == 1);
  CHECK(status->holders[0].parent == std::optional<int>(getpid()));
}

TEST_CASE("the status line names each hold once, by its command, and JSON lists every process") {
  LockStatus status;
  status.state = LockState::exclusive;
  status.holds = 3;
  status.slots = 3;
  status.slots_held = 3;
  // Per slot: the fasten (parent 1), its `sh -c` and the command's child.
  for (int slot = 0; slot < 3; ++slot) {
    const int fasten = 100 + 10 * slot;
    status.holders.push_back(LockHolder{
        .pid = fasten, .command = "fasten exclusive --slots 3 L sh -c job", .slot = slot, .parent = 1});
    status.holders.push_back(
        LockHolder{.pid = fasten + 1, .command = "sh -c job", .slot = slot, .parent = fasten});
    status.holders.push_back(
        LockHolder{.pid = fasten + 2, .command = "sleep 300", .slot = slot, .parent = fasten + 1});
  }
  status.waiting = 7;
  CHECK(cli::describe_status("L", status) ==
        "L: 3 of 3 slots held by pid 101 (sh -c job) in slot 0 under fasten pid 100, pid 111 (sh -c job) in "
        "slot 1 under fasten pid 110 and pid 121 (sh -c job) in slot 2 under fasten pid 120; 7 waiting");
  const std::string json = cli::status_json("L", status);
  for (const int pid : {100, 101, 102, 110, 111, 112, 120, 121, 122}) {
    CHECK(json.find("{\"pid\": " + std::to_string(pid) + ", ") != std::string::npos);
  }
}

TEST_CASE("holds are named by the command that holds, whatever the order of the processes") {
  const std::vector<LockHolder> holders{
      LockHolder{.pid = 12, .command = "make -j2", .parent = 11},
      LockHolder{.pid = 13, .command = "cc", .parent = 12},
      LockHolder{.pid = 11, .command = "fasten exclusive L make -j2", .parent = 1},
      LockHolder{.pid = 20, .command = "fasten -o exclusive L x", .parent = 1},
      LockHolder{.pid = std::nullopt},
      LockHolder{.pid = 30, .command = "etcd holder", .host = "box", .parent = std::nullopt},
  };
  const auto holds = cli::name_holds(holders);
  REQUIRE(holds.size() == 4);
  CHECK(holds[0].pid == std::optional<int>(12));
  CHECK(holds[0].command == "make -j2");
  CHECK(holds[0].fasten_pid == std::optional<int>(11));
  CHECK(holds[1].pid == std::optional<int>(20));
  CHECK_FALSE(holds[1].fasten_pid);
  CHECK_FALSE(holds[2].pid);
  CHECK(holds[3].host == "box");
}
