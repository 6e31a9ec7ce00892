#pragma once

// What each platform's file (lock-linux.cc, lock-win32.cc) provides to lock.cc,
// besides its byte locks (byte-locks.h). lock.cc keeps the state (held or not,
// in which mode); these functions only talk to the operating system.

#include <filesystem>
#include <optional>

#include "lock/byte-locks.h"
#include "lock/file-id.h"
#include "lock/lock.h"

namespace fasten::platform {

[[nodiscard]] Result<FileHandle> open_lock_file(const std::filesystem::path& path,
                                                const OpenOptions& options);

/// Which file `descriptor` is open on.
[[nodiscard]] Result<FileId> file_id(NativeHandle descriptor, const std::string& name);

/// Which file `path` names now, or std::nullopt when it names none (removed).
[[nodiscard]] Result<std::optional<FileId>> path_file_id(const std::filesystem::path& path);

/// Checks that a lock on the file open as `descriptor` keeps other processes
/// out: one that no other process can open (a pipe, a socket) or that is a
/// file of each process's own is an ErrorKind::lock error.
[[nodiscard]] Result<void> check_lockable(NativeHandle descriptor, const std::string& name);

/// Checks that `descriptor` is an open file that can be locked.
[[nodiscard]] Result<void> check_descriptor(NativeHandle descriptor, const std::string& name);

} // namespace fasten::platform
