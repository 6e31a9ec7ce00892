#pragma once

#include <array>
#include <string_view>

// fasten's own exit statuses, from sysexits(3) where one fits, so that they
// stay clear of the statuses commands commonly use for themselves. This is
// the one list: --help's footers are made from k_statuses, and the manual
// and README are checked against it (tests/integration/manual.sh).
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

/// A status of fasten's own and how --help names it.
struct Meaning {
  int status;
  std::string_view text;
};

/// Every status above but 128 + N, in the words of --help.
inline constexpr std::array k_statuses{
    Meaning{k_usage, "usage"},
    Meaning{k_lock_failed, "lock refused"},
    Meaning{k_no_input, "LOCK cannot be opened"},
    Meaning{k_unavailable, "etcd cannot be reached"},
    Meaning{k_os_error, "system error"},
    Meaning{k_cannot_create, "LOCK cannot be created (read-only or full file system)"},
    Meaning{k_io_error, "output cannot be written"},
    Meaning{k_conflict, "not acquired in time (-E changes it)"},
    Meaning{k_lock_lost, "etcd lock lost"},
    Meaning{k_no_permission, "etcd refused the user or role"},
    Meaning{k_not_executable, "COMMAND not executable"},
    Meaning{k_not_found, "COMMAND not found"},
};

} // namespace fasten::exit_code
