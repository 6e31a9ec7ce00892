#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lock/file-handle.h"
#include "lock/result.h"

namespace fasten {

enum class LockState { free, shared, exclusive };

/// A process that holds the lock, as far as the system lets us see it.
struct LockHolder {
  /// std::nullopt when the holder cannot be identified (another user's
  /// process, another machine over NFS).
  std::optional<int> pid;
  /// Its command line, words joined by spaces; empty when unknown.
  std::string command{};
  /// The machine it runs on, for a remote lock; empty for a local one.
  std::string host{};
  /// The slot it holds, for a holder of a counting semaphore's slot.
  std::optional<int> slot{};
  /// Its parent's pid, where the system shows it: a holder whose parent
  /// holds too (the command of a holding fasten, and that command's own
  /// children) shares its parent's hold.
  std::optional<int> parent{};
};

/// A holder of an etcd lock that vanished without letting go: its key went
/// (killed, cut off, its lease revoked under it) and its mark stayed, so it
/// may still be running its command, for up to its TTL. The next holder it
/// excludes waits that out first. A lock file has none: the kernel drops a
/// dead holder's lock, and a living one shows as a holder.
struct VanishedHolder {
  /// What it held, or waited for, as its key's name says.
  enum class Kind { writer, reader, slot };
  Kind kind = Kind::writer;
  std::chrono::seconds ttl{0};
};

struct LockStatus {
  LockState state = LockState::free;
  /// How many holds there are: readers for a shared lock, 1 otherwise.
  int holds = 0;
  /// The processes behind the holds. One hold can show several processes
  /// (fasten and the command that inherited its descriptor). The process that
  /// asks is never among them, even when it inherited a descriptor that holds
  /// the lock.
  std::vector<LockHolder> holders;
  /// How many lock requests wait on the lock.
  int waiting = 0;
  /// A counting semaphore: how many slots its holders, and those that wait
  /// with a slot in hand, say it has (the most, if they disagree), and how
  /// many of them are held (a slot holder holds its slot once it holds the
  /// lock, shared); 0 and 0 when nobody has a slot.
  int slots = 0;
  int slots_held = 0;
  /// Processes that hold a flock(2) lock (flock(1)'s) on the same file: a
  /// separate lock, which neither excludes the other.
  std::vector<LockHolder> flock_holders{};
  /// An etcd lock's holders that vanished without letting go, in the order
  /// they queued. They change neither `state` nor `holds`, which count the
  /// live holders: a mark stays until a taker comes and its TTL has passed.
  std::vector<VanishedHolder> vanished{};
};

/// Whether this system lets query_status see a lock without taking it: on
/// Linux, through /proc/locks; Windows has no such view of LockFileEx locks.
[[nodiscard]] bool status_supported() noexcept;

/// Who holds the lock on `path`, and how many wait. Never blocks, never takes
/// the lock and never creates the file; an error when `path` cannot be read.
/// Only `path` itself and the kernel's lock tables are read, never another
/// process's open files, so another process's stalled mount cannot stall it.
[[nodiscard]] Result<LockStatus> query_status(const std::filesystem::path& path);

/// query_status of the file `descriptor` is open on, whatever names it now
/// (on Linux, through /proc/self/fd).
[[nodiscard]] Result<LockStatus> query_descriptor_status(NativeHandle descriptor);

} // namespace fasten
