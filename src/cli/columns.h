#pragma once

#include <cstddef>
#include <string>
#include <string_view>

// Text measured as a terminal shows it: in display columns, where a CJK
// character takes two and a combining mark none, not in bytes or characters.
namespace fasten::cli {

/// The columns that the UTF-8 text `text` takes on a terminal. A byte that is
/// not part of valid UTF-8 counts one (escape_text has made it `\xHH`
/// already where it matters).
[[nodiscard]] std::size_t display_columns(std::string_view text);

/// `text` as it is when it fits in `columns`; otherwise its beginning and its
/// end around `…`, in `columns` at most, never cut inside a character. The
/// beginning gets `head_thirds` thirds of the columns (a path's end tells
/// most, a command's beginning).
[[nodiscard]] std::string shortened_in_middle(std::string_view text, std::size_t columns,
                                              std::size_t head_thirds = 1);

/// The beginning of `text` that fits in `columns`, never cut inside a
/// character.
[[nodiscard]] std::string cut_to(std::string_view text, std::size_t columns);

} // namespace fasten::cli
