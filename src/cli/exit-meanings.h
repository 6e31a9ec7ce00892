#pragma once

#include <array>
#include <string_view>

#include "run/exit-codes.h"

// How --help names each of fasten's own statuses (run/exit-codes.h): the
// words are the CLI's, the numbers are the run layer's.
namespace fasten::cli {

/// A status of fasten's own and how --help names it.
struct Meaning {
  int status;
  std::string_view text;
};

/// Every status of run/exit-codes.h but 128 + N, in the words of --help.
inline constexpr std::array k_statuses{
    Meaning{exit_code::k_usage, "usage"},
    Meaning{exit_code::k_lock_failed, "lock refused"},
    Meaning{exit_code::k_no_input, "LOCK cannot be opened"},
    Meaning{exit_code::k_unavailable, "etcd cannot be reached"},
    Meaning{exit_code::k_os_error, "system error"},
    Meaning{exit_code::k_cannot_create, "LOCK cannot be created (read-only or full file system)"},
    Meaning{exit_code::k_io_error, "output cannot be written"},
    Meaning{exit_code::k_conflict, "not acquired in time (-E changes it)"},
    Meaning{exit_code::k_lock_lost, "etcd lock lost"},
    Meaning{exit_code::k_no_permission, "etcd refused the user or role"},
    Meaning{exit_code::k_not_executable, "COMMAND not executable"},
    Meaning{exit_code::k_not_found, "COMMAND not found"},
};

} // namespace fasten::cli
