#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "cli/status-command.h"
#include "lock/status.h"

// The text of the waiting line, made to fit the terminal's width.
namespace fasten::cli {

/// What the waiting line says, before it is fitted.
struct WaitFacts {
  std::chrono::seconds waited{};
  std::optional<double> timeout{};
  std::string lock;
  std::string mode;
  /// std::nullopt when who holds the lock is not known.
  std::optional<LockStatus> status{};
  /// The holds, as name_holds names them.
  std::vector<HoldName> holds{};
};

/// The line in `columns` at most: the whole of it when it fits; otherwise
/// shorter forms, with the path and the command shortened in the middle
/// (`…`), which keep the mode, the holder's command and the waiting count.
[[nodiscard]] std::string wait_text(const WaitFacts& facts, std::size_t columns);

} // namespace fasten::cli
