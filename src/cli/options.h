#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "etcd/syntax.h"
#include "lock/backend.h"
#include "lock/lock.h"
#include "run/exit-codes.h"
#include "run/spawn.h"

namespace fasten::cli {

/// With -v, a wait that goes on is said again this often (FASTEN_VERBOSE_INTERVAL).
inline constexpr std::chrono::seconds k_default_verbose_interval{60};

/// The most locks one fasten takes (LOCK and each --also): as many as it
/// can share deadlines of with the command's keeper.
inline constexpr size_t k_max_locks = run::StopBy::k_deadlines;

/// One lock of several (--also MODE LOCK): its name and the mode to take it in.
struct LockRequest {
  std::string path;
  /// As the user wrote it: "exclusive", "read" or "write".
  std::string mode_name;
  LockMode mode = LockMode::exclusive;

  bool operator==(const LockRequest&) const = default;
};

/// A `fasten exclusive|read|write` or `fasten unlock` command line, checked.
struct LockOptions {
  enum class Action {
    /// Hold the lock on LOCK while COMMAND runs.
    run_command,
    /// Lock the inherited descriptor `fd` and exit, leaving it locked.
    lock_descriptor,
    /// Unlock the inherited descriptor `fd`.
    unlock_descriptor,
    /// Say who holds LOCK, without taking it.
    show_status,
  };
  Action action = Action::run_command;
  std::optional<int> fd;
  /// As the user wrote it: "exclusive", "read" or "write".
  std::string mode_name;
  LockMode mode = LockMode::exclusive;
  std::string lock_path;
  /// --also MODE LOCK, in the order given: locks held with LOCK while the
  /// command runs. Empty for the one lock.
  std::vector<LockRequest> also;
  /// The command's argv; `-c STRING` becomes run::shell_command(STRING).
  std::vector<std::string> command;
  Timeout timeout = wait_forever;
  int conflict_exit_code = exit_code::k_conflict;
  bool close_fd = false;
  bool no_fork = false;
  bool no_create = false;
  bool verbose = false;
  /// -q: no waiting line on a terminal.
  bool quiet = false;
  /// status --json
  bool json = false;
  std::optional<unsigned> create_mode;
  /// --slots N: a counting semaphore of N slots.
  std::optional<int> slots;
  /// etcd locks: the lease's time to live, and how long a command gets
  /// between SIGTERM and SIGKILL when the lock is lost.
  std::chrono::seconds ttl = k_default_ttl;
  std::chrono::nanoseconds grace = run::k_default_grace;
  /// FASTEN_ETCD_ENDPOINTS: the endpoints of an etcd:// LOCK that names none.
  std::string etcd_endpoints;
  /// FASTEN_VERBOSE_INTERVAL: with -v and no waiting line, the time between
  /// the lines that say a wait goes on.
  std::chrono::nanoseconds verbose_interval = k_default_verbose_interval;
  /// FASTEN_ETCD_RECHECK: how long an etcd waiter's watch lasts at most
  /// before it looks at the queue again.
  std::chrono::nanoseconds etcd_recheck = k_default_etcd_recheck;
  bool operator==(const LockOptions&) const = default;
};

/// Every lock the command line names: LOCK in the subcommand's mode first,
/// then each --also in the order given.
[[nodiscard]] std::vector<LockRequest> named_locks(const LockOptions& options);

/// The usage error for one lock named twice among several (as the same words,
/// or by two names of the same file).
[[nodiscard]] std::string lock_named_twice(const LockRequest& first, const LockRequest& second);

/// What a command line comes to: options to act on, or an exit status with
/// text for stdout (--help, --version) or a usage error for stderr.
struct ParsedCommandLine {
  std::optional<LockOptions> options;
  int exit_status = 0;
  std::string output;
  std::string error;
};

[[nodiscard]] ParsedCommandLine parse_command_line(const std::vector<std::string>& args);

/// What a lock command's option `option` (-w, --ttl) takes, as --help
/// names it (SECONDS); empty for a flag or a word that is no option.
[[nodiscard]] std::string option_value_text(const std::string& option);

/// "0.25" -> 250 ms. Plain decimal seconds; std::nullopt for anything else
/// (empty, negative, "nan", "inf", exponents, out of range).
[[nodiscard]] std::optional<std::chrono::nanoseconds> parse_seconds(std::string_view text);

} // namespace fasten::cli
