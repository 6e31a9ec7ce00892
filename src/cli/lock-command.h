#pragma once

#include "cli/failure.h"
#include "cli/options.h"
#include "lock/backend.h"
#include "run/exit-status.h"

namespace fasten::cli {

/// One lock the command holds, as FASTEN_LOCKS lists it.
struct HeldLock {
  std::string mode_name;
  std::string path;
  /// A lock in etcd: its fencing token.
  std::optional<std::string> fencing_token{};
};

/// FASTEN_LOCKS: one line for each lock, `MODE TOKEN LOCK`, TOKEN the
/// fencing token of a lock in etcd and `-` for a lock file, LOCK last so
/// that `read -r mode token lock` keeps a path's blanks.
[[nodiscard]] std::string locks_variable(const std::vector<HeldLock>& locks);

/// Takes the lock through `backend`, runs the command, releases the lock:
/// how the command ended, or the conflict status when the timeout passed
/// first. Throws Failure when the lock cannot be had or is lost, or the
/// command cannot be started; with -F, does not return if it can be.
[[nodiscard]] run::ExitStatus run_holding_lock(const LockOptions& options, const Backend& backend);

/// Does what the options ask: locks or unlocks a descriptor, says who holds
/// a lock, or holds one while the command runs. Returns the status to exit
/// with, or ends fasten itself the way the command ended.
int run_lock_command(const LockOptions& options, const Backend& backend);

} // namespace fasten::cli
