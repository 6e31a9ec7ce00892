#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lock/backend.h"
#include "lock/status.h"

namespace fasten::cli {

/// One hold as `status` and the waiting line name it: by the command that
/// the holding fasten runs (its child, which holds the lock through the
/// descriptor it inherited), not by fasten's own command line;
/// `fasten_pid` is the holding fasten's where it was folded in.
struct HoldName {
  std::optional<int> pid;
  std::string command;
  std::optional<int> fasten_pid{};
  std::string host{};
  std::optional<int> slot{};
};

/// The holds behind `holders`, one entry each: a holder whose parent is
/// also listed is folded into it (the command of a holding fasten, and that
/// command's own children), and a fasten with a listed child is named by
/// that child (any other holder, such as a shell that locked a descriptor
/// with --fd, by itself).
[[nodiscard]] std::vector<HoldName> name_holds(const std::vector<LockHolder>& holders);

/// "/run/backup.lock: exclusive, held by pid 4211 (backup.sh --full); 2 waiting", a hold
/// per entry (name_holds)
[[nodiscard]] std::string describe_status(const std::string& path, const LockStatus& status);

/// The same without the path: "exclusive, held by pid 4211 (backup.sh --full); 2 waiting"
[[nodiscard]] std::string describe_holders(const LockStatus& status);

/// Its state alone: "exclusive", "shared by 2", "3 of 4 slots held".
[[nodiscard]] std::string describe_state(const LockStatus& status);

/// {"path": "...", "state": "exclusive", "holders": [{"pid": 4211, "command": "..."}], "waiting": 2}
[[nodiscard]] std::string status_json(const std::string& path, const LockStatus& status);

/// `fasten status [--json] LOCK`: prints the status on stdout; returns 0 when
/// the lock is free, 1 when it is held.
int run_status(const std::string& path, bool json, const Backend& backend, const BackendOptions& options);

} // namespace fasten::cli
