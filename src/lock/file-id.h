#pragma once

#include <compare>
#include <cstdint>

namespace fasten {

/// Which file an open file is, whatever name it was opened by: the device
/// and inode on Linux, the volume serial number and file index on Windows.
struct FileId {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;

  auto operator<=>(const FileId&) const = default;
};

} // namespace fasten
