#pragma once

#include <filesystem>
#include <optional>
#include <string>

// For lock-linux.cc and status-linux.cc: the files on which a lock keeps
// nobody out.
namespace fasten {

/// Why a lock on the file open as `descriptor` would keep no other process
/// out, as the second half of "cannot be a lock: NAME: ...": a pipe, a
/// socket or an anonymous descriptor (epoll, eventfd, ...), which no other
/// process can open, or a file on /proc, where each process opens a file of
/// its own (/proc/self/...). std::nullopt for a file that can be a lock (a
/// FIFO has an inode of its own, and stays one), or one that cannot be
/// looked at, whose lock call then says what is wrong.
[[nodiscard]] std::optional<std::string> why_not_a_lock(int descriptor);

/// The same for the file `path` names, without opening it.
[[nodiscard]] std::optional<std::string> why_not_a_lock(const std::filesystem::path& path);

} // namespace fasten
