#pragma once

#include <string>

#include "lock/backend.h"
#include "lock/status.h"

namespace fasten::cli {

/// "/run/backup.lock: exclusive, held by pid 4211 (backup.sh --full); 2 waiting"
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
