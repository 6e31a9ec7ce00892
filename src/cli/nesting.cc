#include "cli/nesting.h"

#include <algorithm>
#include <functional>

#include "cli/escape.h"
#include "cli/failure.h"
#include "lock/nesting.h"
#include "lock/status.h"
#include "run/exit-codes.h"
#include "run/program.h"

namespace fasten::cli {

Nesting nesting_for(LockMode wanted, std::optional<LockMode> inherited, bool slots, bool close) {
  if (!inherited) {
    return Nesting::take;
  }
  if (*inherited == LockMode::exclusive) {
    // Nothing can be taken beside an exclusive hold: re-enter it, or nothing.
    return close || slots ? Nesting::refuse_conflict : Nesting::reenter;
  }
  if (wanted == LockMode::shared) {
    // A reader beside a reader: with -o it takes the lock as usual, and is
    // refused only if it has to wait (a writer waits for the ancestor).
    return close ? Nesting::take : Nesting::reenter;
  }
  // A slot holder holds the lock shared, beside the ancestor's hold: it
  // may get a slot that another holder frees.
  return slots ? Nesting::take : Nesting::refuse_upgrade;
}

bool waits_for_itself(LockState state, bool slots) {
  return !slots || state == LockState::exclusive;
}

std::optional<LockHolder> ancestor_among(const std::vector<LockHolder>& holders,
                                         const std::vector<int>& ancestors) {
  for (auto ancestor = ancestors.rbegin(); ancestor != ancestors.rend(); ++ancestor) {
    const auto holder = std::ranges::find_if(holders, [&](const LockHolder& held) {
      return held.host.empty() && held.pid && *held.pid == *ancestor;
    });
    if (holder != holders.end()) {
      return *holder;
    }
  }
  return std::nullopt;
}

namespace {

/// "pid 4211 (fasten write site.lock ./deploy.sh), an ancestor of this
/// fasten," or, where status cannot name it, what holds it.
std::string who(const std::optional<LockHolder>& ancestor, const std::string& otherwise) {
  if (!ancestor) {
    return otherwise;
  }
  return "pid " + std::to_string(*ancestor->pid) +
         (ancestor->command.empty() ? "" : " (" + escape_text(ancestor->command) + ")") +
         ", an ancestor of this fasten,";
}

/// The ancestor that holds `name`, as status names it.
std::optional<LockHolder> ancestor_holding(const std::string& name) {
  const auto status = query_status(name);
  return status ? ancestor_among(status.value().holders, run::ancestor_pids()) : std::nullopt;
}

Failure refusal(const std::string& name, const LockOptions& options, const std::string& holder,
                const std::string& held, const std::string& why) {
  return Failure(exit_code::k_lock_failed, "cannot lock " + escape_text(name) + " (" + options.mode_name +
                                               "): " + holder + " holds it " + held +
                                               " and waits for this fasten to end: " + why);
}

/// The refusal of a request that meets an inherited hold it cannot re-enter.
Failure refusal_at_once(const std::string& name, const LockOptions& options, const InheritedHold& inherited,
                        Nesting nesting) {
  const std::string holder =
      who(ancestor_holding(name), "the open file on descriptor " + std::to_string(inherited.descriptor) +
                                      ", which this fasten inherited,");
  if (nesting == Nesting::refuse_upgrade) {
    return refusal(name, options, holder, "shared",
                   "a shared hold cannot be upgraded, and this fasten would wait for itself; take the " +
                       options.mode_name + " lock in the outer fasten instead");
  }
  return refusal(name, options, holder, "exclusive",
                 options.close_fd
                     ? "with -o this fasten cannot re-enter that hold, and would wait for itself; "
                       "leave out -o"
                     : "a slot cannot re-enter an exclusive hold, and this fasten would wait for "
                       "itself; leave out --slots");
}

/// Throws the refusal of a wait for lock `name` where an ancestor holds it
/// (`held`, from `ancestors`), which waits for this fasten; `status` names
/// the ancestor, `why` says why this request cannot re-enter its hold.
void refuse_if_held_by_an_ancestor(const std::string& name, const LockOptions& options,
                                   std::optional<LockMode> held, const std::vector<int>& ancestors,
                                   const std::function<Result<LockStatus>()>& status,
                                   const std::string& why) {
  const bool slots = options.slots && *options.slots > 1;
  if (!held ||
      !waits_for_itself(*held == LockMode::exclusive ? LockState::exclusive : LockState::shared, slots)) {
    return;
  }
  const auto found = status();
  const auto ancestor = found ? ancestor_among(found.value().holders, ancestors) : std::nullopt;
  throw refusal(name, options, who(ancestor, "an ancestor of this fasten"),
                *held == LockMode::exclusive ? "exclusive" : "shared", why);
}

/// Before a wait: refuses it where an ancestor holds the lock, which waits
/// for this fasten (a request that could not re-enter its hold).
WaitHook refuse_to_wait_for_an_ancestor(const std::string& name, const LockOptions& options) {
  return [name, &options] {
    // Every wait passes here: the ancestors' descriptors alone first, and
    // status, which looks at every process, only to name the one found.
    const auto ancestors = run::ancestor_pids();
    const std::string why =
        !nested_holds_supported()
            ? "holds cannot be re-entered with classic fcntl locks, and this fasten would wait for itself"
        : options.close_fd
            ? "with -o this fasten cannot re-enter that hold, and would wait for itself"
            : "no descriptor of this fasten's holds the lock (the outer fasten took it with --also, "
              "whose locks its command does not inherit, or ran with -o, or the descriptor was closed), "
              "so it cannot re-enter that hold, and would wait for itself";
    refuse_if_held_by_an_ancestor(
        name, options, held_by_an_ancestor(name, ancestors), ancestors, [&] { return query_status(name); },
        why);
  };
}

} // namespace

WaitHook refuse_to_wait_for_an_ancestor_on(NativeHandle descriptor, const std::string& name,
                                           const LockOptions& options) {
  return [descriptor, name, &options] {
    const auto ancestors = run::ancestor_pids();
    refuse_if_held_by_an_ancestor(
        name, options, descriptor_held_by_an_ancestor(descriptor, ancestors), ancestors,
        [descriptor] { return query_descriptor_status(descriptor); },
        name + " is not the open file that holds the lock (it was opened apart), so it cannot re-enter "
               "that hold, and this fasten would wait for itself; leave the lock to the ancestor, or lock "
               "the descriptor it locked");
  };
}

Reentry reentry_for(const std::string& name, LockMode mode, const LockOptions& options) {
  if (is_etcd_url(name)) {
    return {}; // an etcd hold is not proved from here: the manual says so
  }
  // A path that cannot be looked at now is the open's to report.
  const auto found = find_inherited_hold(name);
  const auto inherited = found ? found.value() : std::nullopt;
  const bool slots = options.slots && *options.slots > 1;
  const Nesting nesting =
      nesting_for(mode, inherited ? std::optional(inherited->mode) : std::nullopt, slots, options.close_fd);
  if (nesting == Nesting::reenter) {
    if (auto lock = value_or_fail(reenter(*inherited, mode, name))) {
      return Reentry{std::move(lock), {}};
    }
  } else if (nesting != Nesting::take) {
    throw refusal_at_once(name, options, *inherited, nesting);
  }
  return Reentry{nullptr, refuse_to_wait_for_an_ancestor(name, options)};
}

} // namespace fasten::cli
