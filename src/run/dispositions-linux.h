#pragma once

// What each signal does now, process-wide: ignored, caught by a handler, or
// neither (its default). fasten looks once at its start, for the signals it
// inherited ignored, and again before it starts the command, for those it
// passes on.

#include <signal.h>

#include <optional>

namespace fasten::run {

struct Dispositions {
  sigset_t ignored;
  sigset_t caught;
};

/// From the SigIgn and SigCgt lines of /proc/self/status: one read, where
/// asking sigaction costs a system call a signal; std::nullopt where procfs
/// cannot be read. glibc's own signals (32 and 33) are in neither set, as
/// sigaction refuses them.
[[nodiscard]] std::optional<Dispositions> dispositions_from_procfs();

/// Asked of sigaction, one signal after the other.
[[nodiscard]] Dispositions dispositions_by_asking();

/// procfs's, or sigaction's where procfs cannot be read.
[[nodiscard]] Dispositions current_dispositions();

} // namespace fasten::run
