#include <doctest/doctest.h>

#include "cli/escape.h"

using namespace fasten::cli;

TEST_CASE("text output keeps printable UTF-8 and escapes controls, backslashes and invalid bytes") {
  CHECK(escape_text("backup.sh --full") == "backup.sh --full");
  CHECK(escape_text("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92") ==
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92");
  CHECK(escape_text("\xff\x1b]0;PWNED\a\x1b[2J") == "\\xff\\e]0;PWNED\\a\\e[2J");
  CHECK(escape_text("a\\b") == "a\\\\b");
  CHECK(escape_text("\t\n\r\b\f\v") == "\\t\\n\\r\\b\\f\\v");
  CHECK(escape_text(std::string_view("\x00\x01\x7f", 3)) == "\\x00\\x01\\x7f");
  // C1 controls (U+009B is CSI on some terminals) are escaped byte by byte.
  CHECK(escape_text("\xc2\x9b"
                    "2J") == "\\xc2\\x9b2J");
}

TEST_CASE("a line on stderr has its controls and invalid bytes escaped, and escaped parts left as they are") {
  CHECK(escape_controls("locked x\x1b]0;PWNED\a\nfasten: forged\xff") ==
        "locked x\\e]0;PWNED\\a\\nfasten: forged\\xff");
  const std::string escaped = escape_text("a\\b\x1b");
  CHECK(escape_controls(escaped) == escaped);
  CHECK(escape_controls("a\\b") == "a\\b");
}

TEST_CASE("text output escapes each byte of truncated, overlong, surrogate and out-of-range UTF-8") {
  CHECK(escape_text("\xc3") == "\\xc3");
  CHECK(escape_text("\xe2\x82") == "\\xe2\\x82");
  CHECK(escape_text("\x80x") == "\\x80x");
  CHECK(escape_text("\xc0\xaf") == "\\xc0\\xaf");          // an overlong '/'
  CHECK(escape_text("\xed\xa0\x80") == "\\xed\\xa0\\x80"); // U+D800
  CHECK(escape_text("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");
  CHECK(escape_text("\xf8\x88\x80\x80\x80") == "\\xf8\\x88\\x80\\x80\\x80");
}

TEST_CASE("a JSON string is valid UTF-8 whatever the bytes, with invalid bytes as U+DC80 to U+DCFF") {
  CHECK(json_string("") == R"("")");
  CHECK(json_string("say \"hi\"\\\n") == R"("say \"hi\"\\\n")");
  CHECK(json_string("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
  CHECK(json_string("\xff\x1b]0;PWNED\a\x1b[2J") == R"("\udcff\u001b]0;PWNED\u0007\u001b[2J")");
  CHECK(json_string("bad\xff.lock") == R"("bad\udcff.lock")");
  CHECK(json_string(std::string_view("\x00\x7f\xc2\x9b", 4)) == R"("\u0000\u007f\u009b")");
  CHECK(json_string("\xed\xa0\x80") == R"("\udced\udca0\udc80")");
  CHECK(json_string("\t\r\b\f") == R"("\t\r\b\f")");
}
