#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lock/file-handle.h"
#include "lock/result.h"
#include "run/exit-status.h"

namespace fasten::run {

/// What fasten shares with the keeper (keeper-linux.h) of a command whose
/// lock can be lost, in memory both see (Linux: a MAP_SHARED page mapped
/// before the keeper is forked): the time by which the command must be
/// stopped, which fasten moves on as it renews the lock, so that the keeper
/// stops the command itself should fasten not (stopped by SIGSTOP, say).
struct StopBy {
  /// As many as the locks one fasten takes (cli's k_max_locks).
  static constexpr std::size_t k_deadlines = 64;
  /// Each lock's own, in CLOCK_BOOTTIME nanoseconds since its epoch; 0 while
  /// it has none. The command must stop by the earliest.
  std::array<std::atomic<std::int64_t>, k_deadlines> at{};
  /// The earliest deadline, or 0 while there is none.
  [[nodiscard]] std::int64_t earliest() const noexcept {
    std::int64_t first = 0;
    for (const auto& deadline : at) {
      const std::int64_t one = deadline.load();
      if (one != 0 && (first == 0 || one < first)) {
        first = one;
      }
    }
    return first;
  }
  /// Set when fasten has been asked to stop the command: the keeper leaves it to fasten.
  std::atomic<bool> fasten_stops{false};
  /// Set by the keeper when it stopped the command because `at` had passed.
  std::atomic<bool> keeper_stopped{false};
  static_assert(std::atomic<std::int64_t>::is_always_lock_free, "shared between processes");
};

/// Lets another thread ask run_and_wait to stop the command early: SIGTERM
/// to its process group, then SIGKILL after the grace period. Safe to
/// request from any thread, any number of times, before or while the command
/// runs.
class StopRequest {
public:
  StopRequest();
  ~StopRequest();
  StopRequest(const StopRequest&) = delete;
  StopRequest& operator=(const StopRequest&) = delete;

  void request() noexcept;
  /// What run_and_wait waits on besides the command: readable once
  /// requested; k_invalid_handle where it could not be made.
  NativeHandle handle() const noexcept;
  /// Why the handle could not be made (the system's error), or 0.
  int error() const noexcept;
  /// Maps the page shared with the command's keeper (stop_by()), for locks
  /// that can be lost or share a deadline: call it before anything may
  /// request a stop, and before the command starts. Other runs map none: a
  /// system call and a page fault fewer at every start. Nothing on Windows.
  void share_with_keeper() noexcept;
  /// The deadline shared with the command's keeper; null before
  /// share_with_keeper, where there is no keeper (Windows) or the page could
  /// not be mapped (none is enforced then but fasten's own).
  StopBy* stop_by() const noexcept { return m_stop_by; }

private:
  /// The platform's: on Linux a Wakeup (lock/wakeup-linux.h), the one
  /// waker of fasten's threads; nothing on Windows.
  struct Waker;
  std::unique_ptr<Waker> m_waker;
  StopBy* m_stop_by = nullptr;
};

/// Between SIGTERM and SIGKILL when the command line gives no --grace.
inline constexpr std::chrono::seconds k_default_grace{10};

/// What to run, and what it keeps of fasten.
struct CommandSpec {
  /// argv[0] is looked up in PATH, as the shell does (on Windows, as
  /// CreateProcess does). UTF-8.
  std::vector<std::string> argv;
  /// A descriptor the command inherits (the lock's), or none. On Windows the
  /// command never inherits the lock's handle: it runs in a job object that
  /// ends it with fasten instead.
  std::optional<NativeHandle> inherit_fd;
  /// Kill the command, and every process it started, if fasten dies while
  /// it runs (on Linux through a keeper process, keeper-linux.h: a new
  /// session or process group is no way out). For a command that does not
  /// inherit the lock: it must not go on running once nobody holds it.
  /// Always so on Windows.
  bool die_with_parent = false;
  /// With die_with_parent, the lock's descriptor where the lock belongs to
  /// the open file but the command does not inherit it (-o): the keeper
  /// keeps a copy, so that if fasten dies the lock is free only once
  /// everything the command started has been killed.
  std::optional<NativeHandle> keeper_keeps;
  /// Start the command in a process group of its own, so that it can be
  /// stopped as a whole. A terminal's signals then reach fasten only, and
  /// fasten passes them on to the group.
  bool own_process_group = false;
  /// Stops the command when requested; none: it runs until it ends.
  const StopRequest* stop = nullptr;
  /// Between SIGTERM and SIGKILL when stopped.
  std::chrono::nanoseconds grace{k_default_grace};
};

/// How the command ended, and whether run_and_wait stopped it on request.
struct Ended {
  ExitStatus status;
  bool stopped = false;
};

/// The argv that runs `script` with the system's shell, the same for every
/// user (never $SHELL or %COMSPEC%): /bin/sh -c on POSIX, cmd.exe /c on
/// Windows.
[[nodiscard]] std::vector<std::string> shell_command(const std::string& script);

/// Sets a variable in fasten's environment, which the command inherits.
void set_environment(const std::string& name, const std::string& value);
/// Removes a variable from fasten's environment, so the command does not inherit it.
void unset_environment(const std::string& name);

/// Whether the command can replace fasten in its process (-F): not on
/// Windows, which has no exec.
[[nodiscard]] bool can_exec_in_place() noexcept;

/// Whether a shell can hand fasten an open file by number, as `exec 9>>file`
/// does (--fd): not on Windows, whose shells have no such thing.
[[nodiscard]] bool has_inherited_descriptors() noexcept;

/// Takes note of the signals fasten inherited ignored (SIG_IGN): they stay
/// ignored, for fasten and for the command, as exec would leave them (nohup's
/// HUP, the INT and QUIT of a script's background job). While fasten waits
/// for the lock, those of HUP, INT, QUIT, TERM, USR1 and USR2 that it found at
/// their default end it at once by their default action (the shell sees
/// 128 + N), whatever mask it inherited, and the command is never started.
/// Call it first: it looks at the dispositions fasten started with. On
/// Windows, Ctrl-C and Ctrl-Break end it with 128 + SIGINT or SIGBREAK, and
/// closing the console with 128 + SIGHUP. From then on fasten ignores SIGPIPE
/// itself (a write of its own to a closed pipe fails with EPIPE instead),
/// while the command gets it as fasten inherited it.
void end_on_termination_signals();

/// Starts the command with a clean signal mask, the signals fasten inherited
/// ignored still ignored and every other at its default, and waits for it to
/// end. HUP, INT, QUIT, TERM, USR1 and USR2 that fasten found at their
/// default and receives meanwhile are passed on to the command once; those a
/// terminal sent to the whole foreground process group are not, since the
/// command, which is in that group, got them already (unless it has a group
/// of its own: then they go to that group). One sent by a process to both
/// (to their process group) looks the same to fasten as one sent to fasten
/// alone, and is passed on too. The other signals that would end fasten at
/// their default (SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU, SIGXFSZ, SIGIO,
/// SIGPWR, SIGSTKFLT and the real-time ones) are passed on to the command
/// whoever sent them, so that fasten never reports an end of the command
/// that has not happened. When `command.stop` is requested, the
/// command's group gets SIGTERM, and SIGKILL once the grace period is over if
/// anything of it is still there; waiting costs no CPU. On Windows the
/// console sends Ctrl-C and Ctrl-Break to the command itself, and fasten
/// ignores them from now on; a stop request (only etcd locks make one, and
/// they are not built there) is refused.
[[nodiscard]] Result<Ended> run_and_wait(const CommandSpec& command);

/// Replaces fasten with the command, which keeps fasten's pid (and the
/// inherited descriptor). Returns only if it could not be started.
[[nodiscard]] Error exec_in_place(const CommandSpec& command);

} // namespace fasten::run
