// `status` on Windows: not available. Windows has no table of byte-range
// locks that a program could read, and LockFileEx cannot test for a lock
// without taking it, which `status` must never do. The command line refuses
// `status` here (status_supported), and `-v` says what it waits for without
// naming the holders.

#include "lock/status.h"

namespace fasten {

bool status_supported() noexcept {
  return false;
}

Result<LockStatus> query_status(const std::filesystem::path& path) {
  return Error(ErrorKind::system, "cannot see who holds a lock on Windows", path.string());
}

Result<LockStatus> query_descriptor_status(NativeHandle) {
  return Error(ErrorKind::system, "cannot see who holds a lock on Windows", "a descriptor");
}

} // namespace fasten
