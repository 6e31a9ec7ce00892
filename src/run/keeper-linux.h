#pragma once

// The keeper: a process between fasten and a command that does not hold the
// lock itself (-o, classic fcntl locks, a lock fasten renews), so that
// nothing the command started runs on once fasten is gone. Linux only: it
// is a child subreaper (PR_SET_CHILD_SUBREAPER), so every process the
// command starts, and every orphan among them, stays its descendant
// whatever process group or session it makes (setsid is no way out); when
// fasten dies, by any signal, SIGKILL included, the keeper learns it
// (PR_SET_PDEATHSIG) and kills them all before it goes itself.
//
// While fasten lives the keeper only waits: for the command, whose status it
// ends with (the same exit code, or death by the same signal), so that fasten
// sees the command's end as its own child's; and for orphans, which it reaps.
// What the command leaves running when it ends normally goes on, as without
// a keeper (flock(1)'s -o is for starting such daemons).

#include <signal.h>
#include <sys/types.h>

#include <cstdint>

#include "run/spawn.h"

namespace fasten::run {

/// What the processes started for the command tell fasten through the report
/// pipe, as pairs of ints: the command's pid, then, only if exec failed, its
/// errno; or the errno of the keeper's failed fork.
enum ReportKind : int { k_report_pid = 1, k_report_exec_error = 2, k_report_fork_error = 3 };

/// What fasten sends the keeper when it stops the command (a lost etcd
/// lock): once the command has ended, every process it started is killed
/// too, before the keeper ends and fasten releases. Heeded only from fasten.
inline constexpr int k_keeper_end_all_signal = SIGUSR1;

/// Starts the command in a child of the keeper; it never returns (exec, or
/// _exit after reporting why not). The child is the keeper's vfork: it
/// borrows the keeper's memory, so it only makes system calls and writes
/// nothing but its own locals.
using StartCommand = void (*)(const void* context) noexcept;

/// A command whose lock can be lost: the time by which it must be stopped
/// (null: none), which fasten moves on as it renews the lock, and the
/// grace between SIGTERM and SIGKILL. Should that time pass (by
/// k_keeper_lag) without fasten having begun to stop the command, fasten
/// cannot (it is stopped, SIGSTOP, or starved): the keeper stops the
/// command's process group itself, SIGTERM then SIGKILL after the grace,
/// and everything the command started once it has ended.
struct KeeperDeadline {
  StopBy* stop_by = nullptr;
  std::int64_t grace_ns = 0;
};

/// How long after the deadline the keeper waits for fasten to stop the
/// command before it does: fasten, when it runs, stops it at the deadline
/// (a fasten later still makes the command get a second SIGTERM). It comes
/// out of the lease's safety margin (TTL/5, at most 1 s).
inline constexpr std::int64_t k_keeper_lag_ns = 50'000'000;

/// The keeper's whole life, in the process fasten forked: starts the command
/// with `start` and ends as it ends, or kills every descendant when `fasten`
/// dies. Of fasten's descriptors it keeps only `lock` (or none, -1): the
/// lock's, where the lock belongs to the open file, so that fasten's death
/// frees the lock only once the keeper has killed everything and gone.
/// Runs after fork in a process that may have had threads: system calls
/// only, no allocation.
[[noreturn]] void keep(pid_t fasten, int lock, int report_write, StartCommand start, const void* context,
                       KeeperDeadline deadline) noexcept;

} // namespace fasten::run
