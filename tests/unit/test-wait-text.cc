#include <doctest/doctest.h>

#include "cli/columns.h"
#include "cli/wait-text.h"

using namespace fasten;
using namespace fasten::cli;

namespace {

/// Waiting for a lock held exclusively by `command` (pid 4212, run by
/// fasten pid 4211), with 3 waiting.
WaitFacts facts_of(std::string lock, std::string command) {
  LockStatus status;
  status.state = LockState::exclusive;
  status.holds = 1;
  status.waiting = 3;
  return WaitFacts{.waited = std::chrono::seconds(75),
                   .timeout = 600,
                   .lock = std::move(lock),
                   .mode = "write",
                   .status = status,
                   .holds = {HoldName{4212, std::move(command), 4211}}};
}

} // namespace

TEST_CASE("the waiting line says it all where it fits") {
  CHECK(wait_text(facts_of("/run/backup.lock", "backup.sh --full"), 200) ==
        "fasten: waiting 75 s of 600 s for /run/backup.lock (write); it is exclusive, held by pid 4212 "
        "(backup.sh --full), run by fasten pid 4211; 3 waiting");
}

TEST_CASE("at 40 columns the waiting line keeps the mode, the holder's command and the waiting count") {
  const std::string text =
      wait_text(facts_of("/var/lib/ci/runners/builds/project/cache/backup.lock",
                         "rsync --archive --delete /srv/data/projects/very/long/path backup:/srv/data"),
                40);
  CHECK(display_columns(text) <= 40);
  CHECK(text.find("write") != std::string::npos);
  CHECK(text.find("rsync") != std::string::npos);
  CHECK(text.ends_with("3 waiting"));
  CHECK(text.find("…") != std::string::npos);
}

TEST_CASE("a CJK path and command are fitted by their columns, two for each character") {
  const WaitFacts facts = facts_of("/数据/项目/缓存/备份锁文件.lock", "备份程序 --全部 --删除旧的备份文件");
  const std::string whole = wait_text(facts, 300);
  CHECK(whole.find("/数据/项目/缓存/备份锁文件.lock") != std::string::npos);
  for (const std::size_t columns : {40u, 60u, 80u}) {
    const std::string text = wait_text(facts, columns);
    CHECK(display_columns(text) <= columns);
    CHECK(text.find("write") != std::string::npos);
    CHECK(text.find("备份") != std::string::npos);
    CHECK(text.ends_with("3 waiting"));
  }
}

TEST_CASE("the waiting line escapes other people's bytes and fits even a tiny terminal") {
  const WaitFacts facts = facts_of("lock\x1b[2J", "evil\x1b]0;x\a");
  const std::string text = wait_text(facts, 200);
  CHECK(text.find('\x1b') == std::string::npos);
  CHECK(text.find("\\e[2J") != std::string::npos);
  for (std::size_t columns = 1; columns < 40; ++columns) {
    CHECK(display_columns(wait_text(facts, columns)) <= columns);
  }
}
