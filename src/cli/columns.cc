#include "cli/columns.h"

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

namespace fasten::cli {

namespace {

/// One character of UTF-8 text: its bytes and its columns.
struct Glyph {
  std::size_t bytes;
  std::size_t columns;
};

/// Characters that take two columns (East Asian Wide and Fullwidth, and the
/// emoji blocks), as wcwidth(3) says in a UTF-8 locale. A table of our own:
/// wcwidth answers only under a UTF-8 LC_CTYPE, which fasten does not set.
constexpr std::array<std::pair<char32_t, char32_t>, 14> k_wide{{
    {0x1100, 0x115f},
    {0x231a, 0x231b},
    {0x2e80, 0x303e},
    {0x3041, 0x33ff},
    {0x3400, 0x4dbf},
    {0x4e00, 0x9fff},
    {0xa000, 0xa4cf},
    {0xac00, 0xd7a3},
    {0xf900, 0xfaff},
    {0xfe30, 0xfe4f},
    {0xff00, 0xff60},
    {0xffe0, 0xffe6},
    {0x1f300, 0x1faff},
    {0x20000, 0x3fffd},
}};

/// Combining marks, which take no column of their own.
constexpr std::array<std::pair<char32_t, char32_t>, 5> k_combining{{
    {0x0300, 0x036f},
    {0x1ab0, 0x1aff},
    {0x1dc0, 0x1dff},
    {0x200b, 0x200f},
    {0xfe00, 0xfe0f},
}};

bool in(const auto& ranges, char32_t code) {
  return std::ranges::any_of(
      ranges, [code](const auto& range) { return code >= range.first && code <= range.second; });
}

/// The character that starts `text`; a byte that does not start valid UTF-8
/// is one character of one column.
Glyph glyph_at(std::string_view text) {
  const auto lead = static_cast<unsigned char>(text[0]);
  const std::size_t length = lead < 0x80         ? 1
                             : lead >> 5 == 0x6  ? 2
                             : lead >> 4 == 0xe  ? 3
                             : lead >> 3 == 0x1e ? 4
                                                 : 0;
  if (length <= 1 || length > text.size()) {
    return {1, 1};
  }
  char32_t code = lead & (0x7f >> length);
  for (std::size_t i = 1; i < length; ++i) {
    const auto next = static_cast<unsigned char>(text[i]);
    if ((next & 0xc0) != 0x80) {
      return {1, 1};
    }
    code = (code << 6) | (next & 0x3f);
  }
  return {length, in(k_combining, code) ? 0u : in(k_wide, code) ? 2u : 1u};
}

std::vector<Glyph> glyphs_of(std::string_view text) {
  std::vector<Glyph> glyphs;
  for (std::size_t at = 0; at < text.size();) {
    glyphs.push_back(glyph_at(text.substr(at)));
    at += glyphs.back().bytes;
  }
  return glyphs;
}

} // namespace

std::size_t display_columns(std::string_view text) {
  std::size_t columns = 0;
  for (const auto& glyph : glyphs_of(text)) {
    columns += glyph.columns;
  }
  return columns;
}

std::string cut_to(std::string_view text, std::size_t columns) {
  std::size_t bytes = 0;
  std::size_t used = 0;
  for (const auto& glyph : glyphs_of(text)) {
    if (used + glyph.columns > columns) {
      break;
    }
    used += glyph.columns;
    bytes += glyph.bytes;
  }
  return std::string(text.substr(0, bytes));
}

std::string shortened_in_middle(std::string_view text, std::size_t columns, std::size_t head_thirds) {
  if (display_columns(text) <= columns) {
    return std::string(text);
  }
  if (columns == 0) {
    return {};
  }
  const std::size_t head_columns = (columns - 1) * head_thirds / 3;
  std::size_t tail_columns = columns - 1 - head_columns;
  const auto glyphs = glyphs_of(text);
  std::size_t tail_bytes = 0;
  for (auto glyph = glyphs.rbegin(); glyph != glyphs.rend() && glyph->columns <= tail_columns; ++glyph) {
    tail_columns -= glyph->columns;
    tail_bytes += glyph->bytes;
  }
  return cut_to(text, head_columns + tail_columns) + "…" + std::string(text.substr(text.size() - tail_bytes));
}

} // namespace fasten::cli
