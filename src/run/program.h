#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

/// fasten hands a LOCK it does not take itself to a program of its own (an
/// etcd:// LOCK to fasten-etcd), as mount(8) hands NFS to mount.nfs: it finds
/// the program next to itself and replaces itself with it.
namespace fasten::run {

/// The file the running program was started from; empty when the system
/// cannot say.
[[nodiscard]] std::filesystem::path running_program();

/// The program's arguments as UTF-8: argv as it is on POSIX; on Windows,
/// where main's argv is in the ANSI code page, the UTF-16 command line
/// converted.
[[nodiscard]] std::vector<std::string> utf8_arguments(int argc, char** argv);

/// Replaces this process with the program `file`, which gets `argv` as it is
/// and everything else unchanged: the pid, the descriptors, the signal
/// dispositions and mask. Returns only if it could not start it, with the
/// system's error number.
[[nodiscard]] int exec_program(const std::filesystem::path& file, char** argv);

/// Which standard descriptors fill_standard_descriptors found closed.
struct FilledDescriptors {
  /// False when one was closed and /dev/null could not be opened in its
  /// place: then nothing may be opened.
  bool ok = true;
  /// filled[n]: descriptor n was closed, and is /dev/null now; it is no
  /// descriptor that the program's caller handed down (--fd n).
  std::array<bool, 3> filled{};
};

/// Opens /dev/null on each of the standard descriptors 0, 1 and 2 that the
/// program was started with closed, as sudo and daemons do. Call it first:
/// otherwise the first file opened (the lock file) would take a closed
/// standard number, and fasten's own lines or the command's output would go
/// into it. The command then gets /dev/null for each of them. Nothing to do
/// on Windows, whose handles are not numbered that way.
[[nodiscard]] FilledDescriptors fill_standard_descriptors() noexcept;

/// The pids of this process's parent, its parent's parent and so on, up to
/// the first process; empty where the system cannot say.
[[nodiscard]] std::vector<int> ancestor_pids();

/// The pid of process `pid`'s parent; std::nullopt where the system cannot
/// say, or the process is gone.
[[nodiscard]] std::optional<int> parent_of(int pid);

} // namespace fasten::run
