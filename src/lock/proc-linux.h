#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "lock/file-handle.h"
#include "lock/file-id.h"
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

/// The names in a directory of procfs (a process's fd or fdinfo), read by
/// getdents64(2) into a buffer of its own rather than by opendir(3), which
/// takes 32 kB from the heap for each directory, and asks fstat(2) of it
/// besides: on fasten's way to its command that buffer alone spread the
/// heap over two pages more (BENCHMARKS.md). "." and ".." are left out.
class ProcDirectory {
public:
  explicit ProcDirectory(const std::string& path);

  /// False where the directory could not be opened: gone, or another user's.
  bool opened() const noexcept { return m_directory.valid(); }

  /// The next name; std::nullopt at the end, or on an error reading (the
  /// process has ended). The view lasts until the next call.
  std::optional<std::string_view> next();

private:
  FileHandle m_directory;
  alignas(8) std::array<char, 1024> m_buffer{};
  std::size_t m_size = 0;
  std::size_t m_offset = 0;
};

/// What one descriptor holds of a lock through its open file: the data
/// byte (exclusive or shared), and a slot.
struct DescriptorHold {
  bool data = false;
  bool exclusive = false;
  std::optional<int> slot;
};

/// What the "lock:" lines of `fdinfo` (/proc/PID/fdinfo/FD) say that the
/// descriptor's open file holds of fasten's lock on `file` (open-file
/// locks only: classic ones belong to a process, and a child's fdinfo does
/// not list its parent's). Nothing, where the file cannot be read.
/// (status-linux.cc)
[[nodiscard]] DescriptorHold held_through(const std::string& fdinfo, const FileId& file);

} // namespace fasten
