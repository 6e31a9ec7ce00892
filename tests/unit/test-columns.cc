#include <doctest/doctest.h>

#include "cli/columns.h"

using namespace fasten::cli;

TEST_CASE("display columns count a CJK character as two, a combining mark as none, a stray byte as one") {
  CHECK(display_columns("") == 0);
  CHECK(display_columns("backup.lock") == 11);
  CHECK(display_columns("锁文件") == 6);
  CHECK(display_columns("잠금") == 4);
  CHECK(display_columns("ｆｕｌｌ") == 8);
  CHECK(display_columns("e\u0301") == 1);
  CHECK(display_columns("\xff") == 1);
  CHECK(display_columns("\xe9\x94") == 2); // a character cut short: two stray bytes
  CHECK(display_columns("🔒") == 2);
}

TEST_CASE("cut_to never cuts inside a character, nor lets a wide one overhang") {
  CHECK(cut_to("abcdef", 3) == "abc");
  CHECK(cut_to("abc", 10) == "abc");
  CHECK(cut_to("锁文件", 3) == "锁");
  CHECK(cut_to("锁文件", 4) == "锁文");
  CHECK(cut_to("锁文件", 1).empty());
  CHECK(cut_to("e\u0301x", 1) == "e\u0301");
}

TEST_CASE("shortening in the middle keeps both ends around an ellipsis, within the columns") {
  CHECK(shortened_in_middle("short", 10) == "short");
  CHECK(shortened_in_middle("/var/lib/ci/locks/backup.lock", 13) == "/var…kup.lock");
  CHECK(display_columns(shortened_in_middle("/var/lib/ci/locks/backup.lock", 13)) == 13);
  // A command keeps two thirds for its beginning, which names the program.
  CHECK(shortened_in_middle("rsync -a /srv/data backup:/srv", 13, 2) == "rsync -a…/srv");
  CHECK(shortened_in_middle("abc", 0).empty());
  CHECK(shortened_in_middle("abcdef", 1) == "…");
  // Wide characters: never cut, and never past the columns.
  const std::string wide = shortened_in_middle("/数据/锁/备份文件.lock", 12);
  CHECK(display_columns(wide) <= 12);
  CHECK(wide.find("…") != std::string::npos);
  CHECK(wide.ends_with(".lock"));
  for (std::size_t columns = 0; columns < 25; ++columns) {
    CHECK(display_columns(shortened_in_middle("锁a锁b锁c锁d锁e锁f锁g锁", columns)) <= columns);
  }
}
