// Paths and command lines of other users, made safe to print (escape.h):
// whatever the bytes, escape_text and escape_controls give valid UTF-8 with
// no control character, and json_string a JSON string of valid UTF-8 that
// reads back, escape by escape, to the same bytes.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cli/escape.h"

namespace {

/// Checks that `text` is valid UTF-8 with no C0 control, DEL or C1 control
/// in it; aborts otherwise.
void check_printable(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char lead = byte(i);
    if (lead < 0x20 || lead == 0x7f) {
      std::abort(); // C0 control or DEL
    }
    std::size_t length = lead < 0x80             ? 1
                         : (lead & 0xe0) == 0xc0 ? 2
                         : (lead & 0xf0) == 0xe0 ? 3
                         : (lead & 0xf8) == 0xf0 ? 4
                                                 : 0;
    if (length == 0 || i + length > text.size()) {
      std::abort();
    }
    char32_t code_point = length == 1 ? lead : lead & (0x7f >> length);
    for (std::size_t j = 1; j < length; ++j) {
      if ((byte(i + j) & 0xc0) != 0x80) {
        std::abort();
      }
      code_point = code_point << 6 | (byte(i + j) & 0x3f);
    }
    const char32_t minimum[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code_point < minimum[length] || code_point > 0x10ffff ||
        (code_point >= 0xd800 && code_point <= 0xdfff) || (code_point >= 0x80 && code_point <= 0x9f)) {
      std::abort(); // overlong, past U+10FFFF, a surrogate, or a C1 control
    }
    i += length;
  }
}

int hex_digit(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

/// Reads the JSON string `json` back into the bytes it stands for, with
/// \udcXX as the byte XX (surrogateescape); aborts on anything RFC 8259
/// does not allow in a string.
std::string read_json_string(std::string_view json) {
  if (json.size() < 2 || json.front() != '"' || json.back() != '"') {
    std::abort();
  }
  std::string bytes;
  for (std::size_t i = 1; i + 1 < json.size(); ++i) {
    const char c = json[i];
    if (c == '"') {
      std::abort(); // an unescaped quote inside
    }
    if (c != '\\') {
      bytes += c;
      continue;
    }
    if (i + 2 >= json.size()) {
      std::abort();
    }
    const char e = json[++i];
    const char* simple = "\"\\/bfnrt";
    const char* meaning = "\"\\/\b\f\n\r\t";
    if (const auto* at = std::char_traits<char>::find(simple, 8, e)) {
      bytes += meaning[at - simple];
      continue;
    }
    if (e != 'u' || i + 5 >= json.size()) {
      std::abort();
    }
    unsigned unit = 0;
    for (int k = 1; k <= 4; ++k) {
      const int digit = hex_digit(json[i + k]);
      if (digit < 0) {
        std::abort();
      }
      unit = unit << 4 | static_cast<unsigned>(digit);
    }
    i += 4;
    if (unit >= 0xdc80 && unit <= 0xdcff) {
      bytes += static_cast<char>(unit - 0xdc00); // a byte that is not part of UTF-8
    } else if (unit < 0x20 || unit == 0x7f) {
      bytes += static_cast<char>(unit);
    } else if (unit >= 0x80 && unit <= 0x9f) {
      bytes += static_cast<char>(0xc2); // a C1 control, in UTF-8
      bytes += static_cast<char>(unit);
    } else {
      std::abort(); // json_string escapes nothing else
    }
  }
  return bytes;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_printable(fasten::cli::escape_text(bytes));
  check_printable(fasten::cli::escape_controls(bytes));
  const std::string json = fasten::cli::json_string(bytes);
  check_printable(json);
  if (read_json_string(json) != bytes) {
    std::abort(); // two different paths would print the same
  }
  return 0;
}
