#pragma once

// fasten's own exit statuses, from sysexits(3) where one fits, so that they
// stay clear of the statuses commands commonly use for themselves. This is
// the one list: --help's words for each are in cli/exit-meanings.h, and
// the manual and README are checked against both (tests/integration/manual.sh).
namespace fasten::exit_code {

inline constexpr int k_usage = 64;           // EX_USAGE: bad command line
inline constexpr int k_lock_failed = 65;     // EX_DATAERR: the lock call itself was refused
inline constexpr int k_no_input = 66;        // EX_NOINPUT: LOCK cannot be opened or created
inline constexpr int k_unavailable = 69;     // EX_UNAVAILABLE: a remote lock backend cannot be reached
inline constexpr int k_os_error = 71;        // EX_OSERR: fork failed, no locks left
inline constexpr int k_cannot_create = 73;   // EX_CANTCREAT: LOCK's file system is read-only or full
inline constexpr int k_io_error = 74;        // EX_IOERR: fasten's own output cannot be written
inline constexpr int k_conflict = 75;        // EX_TEMPFAIL: not acquired in time (default of -E)
inline constexpr int k_lock_lost = 76;       // a remote lock was lost while the command ran
inline constexpr int k_no_permission = 77;   // EX_NOPERM: etcd refused the credentials or the role
inline constexpr int k_not_executable = 126; // as the shell: found but cannot be run
inline constexpr int k_not_found = 127;      // as the shell: command not found
inline constexpr int k_signal_base = 128;    // 128 + N: killed by signal N

} // namespace fasten::exit_code
