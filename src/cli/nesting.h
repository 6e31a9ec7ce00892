#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/options.h"
#include "lock/backend.h"

// What fasten does with a lock that an ancestor of its own holds: re-enter
// the hold where it can prove it (lock/nesting.h), and refuse at once a
// request that would wait for the ancestor, which waits for it (an upgrade,
// or a request that cannot re-enter). ARCHITECTURE.md, "Nested holds";
// the manual, "COMPOSING LOCKS".
namespace fasten::cli {

/// What a request meets where an inherited open file holds the lock.
enum class Nesting {
  /// Take the lock as usual (nothing inherited holds it, or what does
  /// cannot be re-entered without waiting for it: a read in a read, -o).
  take,
  /// Re-enter the inherited hold.
  reenter,
  /// Refuse: an exclusive request inside a shared hold (an upgrade).
  refuse_upgrade,
  /// Refuse: a request that conflicts with an exclusive hold and cannot
  /// re-enter it (-o, --slots).
  refuse_conflict,
};

/// What a request meets. `inherited`: how an open file of this process's
/// holds the lock, if one does; `slots`: --slots was given; `close`: -o.
[[nodiscard]] Nesting nesting_for(LockMode wanted, std::optional<LockMode> inherited, bool slots, bool close);

/// Whether an acquire that must wait, while one of its ancestors holds the
/// lock (in `state`), waits for itself: always, but for a slot inside a
/// shared hold, which another slot's holder may free.
[[nodiscard]] bool waits_for_itself(LockState state, bool slots);

/// The holder in `holders` that is among `ancestors` (nearest first), the
/// farthest up the line (the outer fasten rather than the command it runs,
/// which holds the lock with it).
[[nodiscard]] std::optional<LockHolder> ancestor_among(const std::vector<LockHolder>& holders,
                                                       const std::vector<int>& ancestors);

/// What to do about an ancestor's hold, decided just before LOCK (`name`)
/// is taken in `mode`.
struct Reentry {
  /// A hold re-entered: use it instead of opening LOCK; its acquire returns at once.
  std::unique_ptr<Lock> lock;
  /// Otherwise: to be called once the lock is found not free, before the
  /// acquire waits; it throws the refusal (status 65) where an ancestor
  /// holds the lock. Empty where ancestors are not looked for (etcd).
  WaitHook before_wait;
};

/// For --fd: to be called once the lock on the file that `descriptor`
/// (named `name`) is open on is found not free, before the acquire waits;
/// it throws the refusal (status 65) where an ancestor holds that lock
/// through another open file, which this request cannot re-enter (a
/// script that locks its own descriptor, run by one that holds the lock).
[[nodiscard]] WaitHook refuse_to_wait_for_an_ancestor_on(NativeHandle descriptor, const std::string& name,
                                                         const LockOptions& options);

/// Re-enters an ancestor's hold on `name` where it can prove it, throws a
/// Failure with status 65 at once for a request that would wait for its
/// ancestor, and otherwise lets the caller take the lock (with
/// Reentry::before_wait to refuse a wait for an ancestor found on the way).
[[nodiscard]] Reentry reentry_for(const std::string& name, LockMode mode, const LockOptions& options);

} // namespace fasten::cli
