#include "cli/escape.h"

#include <cstdint>
#include <cstdio>

namespace fasten::cli {

namespace {

/// The length of the valid UTF-8 sequence at the start of `bytes` (1 to 4),
/// or 0 when it does not start with one: a stray continuation byte, a
/// truncated or overlong sequence, a surrogate or a code point past U+10FFFF.
std::size_t utf8_length(std::string_view bytes, char32_t& code_point) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  const unsigned char lead = byte(0);
  std::size_t length = 0;
  char32_t minimum = 0;
  if (lead < 0x80) {
    code_point = lead;
    return 1;
  } else if ((lead & 0xe0) == 0xc0) {
    length = 2;
    minimum = 0x80;
    code_point = lead & 0x1f;
  } else if ((lead & 0xf0) == 0xe0) {
    length = 3;
    minimum = 0x800;
    code_point = lead & 0x0f;
  } else if ((lead & 0xf8) == 0xf0) {
    length = 4;
    minimum = 0x10000;
    code_point = lead & 0x07;
  } else {
    return 0;
  }
  if (bytes.size() < length) {
    return 0;
  }
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xc0) != 0x80) {
      return 0;
    }
    code_point = (code_point << 6) | (byte(i) & 0x3f);
  }
  const bool surrogate = code_point >= 0xd800 && code_point <= 0xdfff;
  return code_point < minimum || surrogate || code_point > 0x10ffff ? 0 : length;
}

/// C0 controls, DEL and C1 controls: what a terminal may act on.
bool is_control(char32_t code_point) {
  return code_point < 0x20 || (code_point >= 0x7f && code_point <= 0x9f);
}

std::string hex_escape(const char* format, unsigned value) {
  char escaped[8];
  std::snprintf(escaped, sizeof escaped, format, value);
  return escaped;
}

/// `\a`, `\n`, ... for the controls that have a short C escape; nullptr else.
const char* short_escape(char32_t code_point) {
  switch (code_point) {
  case '\a':
    return "\\a";
  case '\b':
    return "\\b";
  case '\t':
    return "\\t";
  case '\n':
    return "\\n";
  case '\v':
    return "\\v";
  case '\f':
    return "\\f";
  case '\r':
    return "\\r";
  case 0x1b:
    return "\\e";
  default:
    return nullptr;
  }
}

/// escape_text, with `\\` for a backslash or not.
std::string escaped(std::string_view bytes, bool escape_backslash) {
  std::string text;
  text.reserve(bytes.size());
  while (!bytes.empty()) {
    char32_t code_point = 0;
    const std::size_t length = utf8_length(bytes, code_point);
    if (length == 0) {
      text += hex_escape("\\x%02x", static_cast<unsigned char>(bytes[0]));
      bytes.remove_prefix(1);
      continue;
    }
    if (const char* escape = short_escape(code_point)) {
      text += escape;
    } else if (is_control(code_point)) {
      for (std::size_t i = 0; i < length; ++i) { // a C1 control: both of its bytes
        text += hex_escape("\\x%02x", static_cast<unsigned char>(bytes[i]));
      }
    } else if (code_point == '\\' && escape_backslash) {
      text += "\\\\";
    } else {
      text.append(bytes.substr(0, length));
    }
    bytes.remove_prefix(length);
  }
  return text;
}

} // namespace

std::string escape_text(std::string_view bytes) {
  return escaped(bytes, true);
}

std::string escape_controls(std::string_view bytes) {
  return escaped(bytes, false);
}

std::string json_string(std::string_view bytes) {
  std::string quoted = "\"";
  quoted.reserve(bytes.size() + 2);
  while (!bytes.empty()) {
    char32_t code_point = 0;
    const std::size_t length = utf8_length(bytes, code_point);
    if (length == 0) {
      quoted += hex_escape("\\udc%02x", static_cast<unsigned char>(bytes[0]));
      bytes.remove_prefix(1);
      continue;
    }
    if (code_point == '"' || code_point == '\\') {
      quoted += '\\';
      quoted += static_cast<char>(code_point);
    } else if (code_point == '\n' || code_point == '\t' || code_point == '\r' || code_point == '\b' ||
               code_point == '\f') {
      quoted += short_escape(code_point);
    } else if (is_control(code_point)) {
      quoted += hex_escape("\\u%04x", static_cast<unsigned>(code_point));
    } else {
      quoted.append(bytes.substr(0, length));
    }
    bytes.remove_prefix(length);
  }
  return quoted + "\"";
}

} // namespace fasten::cli
