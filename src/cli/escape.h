#pragma once

#include <string>
#include <string_view>

// Bytes fasten did not choose (paths, other users' command lines) made safe
// to print: on a terminal they must not act as controls, and in JSON they
// must stay valid UTF-8 whatever they are.
namespace fasten::cli {

/// For text output, as `ls -b` and `ps` do: valid UTF-8 stays as it is,
/// except a backslash (`\\`), the C0 controls, DEL and the C1 controls (`\a`
/// `\b` `\t` `\n` `\v` `\f` `\r` `\e`, else `\xHH` for each byte), and every
/// byte that is not part of valid UTF-8 (`\xHH`).
[[nodiscard]] std::string escape_text(std::string_view bytes);

/// For a line of fasten's own that may carry such bytes anywhere: what
/// escape_text does, but for the backslash, which stays as it is, so that
/// parts already escaped are not escaped twice. Every line on stderr goes
/// through it (`diagnostics.cc`).
[[nodiscard]] std::string escape_controls(std::string_view bytes);

/// A JSON string (RFC 8259), quotes included, that is valid UTF-8 whatever
/// `bytes` holds: `"` and `\` escaped, controls as `\n`, `\t`, ... or `\u00XX`,
/// DEL and C1 controls as `\u00XX`, and each byte that is not part of valid
/// UTF-8 as the lone surrogate `\udcXX` (U+DC00 + the byte, as Python's
/// "surrogateescape"; `os.fsencode` turns such a string back into the bytes).
[[nodiscard]] std::string json_string(std::string_view bytes);

} // namespace fasten::cli
