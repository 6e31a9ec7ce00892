#pragma once

#include <string>

#include "lock/file-handle.h"
#include "lock/result.h"

// Reading the files of procfs that belong to other processes, which may end
// at any moment: `status` reads /proc/PID/fdinfo and /proc/PID/cmdline of
// processes that come and go.
namespace fasten {

/// All of `file`, a file of procfs, by read(2). Not a stream: when the
/// process that the file belongs to ends between two reads, the next fails
/// with ESRCH, on which a std::ifstream throws (or stops as if at the end).
/// An error names `path` and the errno.
[[nodiscard]] Result<std::string> read_all(const FileHandle& file, const std::string& path);

/// All of the procfs file at `path`: an error when it cannot be opened or read.
[[nodiscard]] Result<std::string> read_proc_file(const std::string& path);

} // namespace fasten
