#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "lock/backend.h"

// Nested holds. A command that fasten runs inherits the lock's open file
// (unless -o); when it runs fasten again on the same lock, that inner fasten
// would wait for its own ancestor. Instead it re-enters the hold, where it
// can prove that the hold is its ancestor's: one of its own descriptors is
// open on the file LOCK names, and the open file behind it holds the lock in
// a mode that covers the one asked (exclusive covers both, shared covers
// shared). The descriptor is the proof, not the environment: the kernel says
// what the open file holds (on Linux, the "lock:" lines of
// /proc/self/fdinfo/N, which list the locks of that open file alone).
//
// A re-entered hold is held through an open file of the inner fasten's own,
// which its command inherits as it would inherit a lock of its own:
//  - inside a shared hold, it holds the data byte shared itself (readers
//    share it; it passes no turnstile, so a writer waiting there, which
//    waits for the ancestor, does not hold it back);
//  - inside an exclusive hold, it holds protocol::k_nested shared, and the
//    exclusive holder waits, as it releases, until no nested hold is left
//    (protocol::release_after_nested), so the outer hold covers the inner.
namespace fasten {

/// An open file of this process's that holds fasten's lock on a file.
struct InheritedHold {
  /// The descriptor's number, one of this process's own (inherited, or
  /// passed); only where nested holds are supported, which number them.
  int descriptor = -1;
  /// How it holds the data byte: exclusive (a writer's), or shared (a
  /// reader's, a slot holder's).
  LockMode mode = LockMode::shared;
};

/// Whether a nested fasten can prove a hold and re-enter it here: with
/// open-file-description locks on Linux. Not with classic fcntl locks, which
/// belong to the process that took them (a child's descriptors hold
/// nothing), nor on Windows, which has no view of a handle's locks.
[[nodiscard]] bool nested_holds_supported() noexcept;

/// Among this process's descriptors, one whose open file holds the data
/// byte of the file `path` names now (an exclusive hold before a shared
/// one). std::nullopt where none does, `path` names no file, or nested holds
/// are not supported.
[[nodiscard]] Result<std::optional<InheritedHold>> find_inherited_hold(const std::filesystem::path& path);

/// How one of `ancestors` (pids) holds the data byte of the file `path`
/// names, the strongest hold first; std::nullopt where none does or the
/// system cannot tell. Cheap: only the ancestors' own descriptors are looked
/// at (their /proc/PID/fdinfo; with classic locks, /proc/locks), never
/// another process's files.
[[nodiscard]] std::optional<LockMode> held_by_an_ancestor(const std::filesystem::path& path,
                                                          const std::vector<int>& ancestors);

/// held_by_an_ancestor of the file that `descriptor` is open on (--fd),
/// whatever names it now.
[[nodiscard]] std::optional<LockMode> descriptor_held_by_an_ancestor(NativeHandle descriptor,
                                                                     const std::vector<int>& ancestors);

/// Re-enters `held` (from find_inherited_hold) for a command that asks for
/// `mode`, which `held.mode` must cover: a Lock whose acquire returns at
/// once, with an open file for the command to inherit, and whose release
/// unlocks what it took (never `held` itself). nullptr where the hold is
/// being let go meanwhile: then take the lock as usual.
[[nodiscard]] Result<std::unique_ptr<Lock>> reenter(const InheritedHold& held, LockMode mode,
                                                    const std::filesystem::path& path);

} // namespace fasten
