#include "cli/lock-command.h"

#include <algorithm>
#include <mutex>
#include <optional>

#include "cli/diagnostics.h"
#include "cli/escape.h"
#include "cli/status-command.h"
#include "cli/terminal.h"
#include "cli/wait-line.h"
#include "cli/wait-text.h"
#include "lock/backend.h"
#include "run/exit-status.h"
#include "run/exit-codes.h"
#include "run/program.h"
#include "run/spawn.h"

namespace fasten::cli {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// "; it is exclusive, held by ...", and what to do where a holder is an
/// ancestor of this fasten (`fasten exclusive L sh -c 'fasten exclusive L
/// cmd'`), which waits for itself: locks are not reentrant.
std::string who_holds(const LockStatus& status) {
  std::string text = "; it is " + describe_holders(status);
  const auto ancestors = run::ancestor_pids();
  for (const auto& holder : status.holders) {
    if (holder.host.empty() && holder.pid && std::ranges::find(ancestors, *holder.pid) != ancestors.end()) {
      return text + "; the holder, pid " + std::to_string(*holder.pid) +
             ", is an ancestor of this fasten: it waits for itself until its timeout; take the lock once "
             "(the command already runs under it)";
    }
  }
  return text;
}

/// With -v: what the lock waits for, and whom (`status` looks).
WaitHook say_what_it_waits_for(const LockOptions& options, const std::string& name,
                               const std::function<Result<LockStatus>()>& query) {
  if (!verbose_enabled()) {
    return {};
  }
  return [&options, name, query] {
    const auto status = query();
    const std::string holders = status ? who_holds(status.value()) : std::string();
    if (options.timeout) {
      verbose("waiting up to {} s to lock {} ({}){}", std::chrono::duration<double>(*options.timeout).count(),
              escape_text(name), options.mode_name, holders);
    } else {
      verbose("waiting to lock {} ({}){}", escape_text(name), options.mode_name, holders);
    }
  };
}

/// The holder in `status` that is an ancestor of this fasten, which waits
/// for itself.
std::optional<int> ancestor_holder(const LockStatus& status) {
  const auto ancestors = run::ancestor_pids();
  for (const auto& holder : status.holders) {
    if (holder.host.empty() && holder.pid && std::ranges::find(ancestors, *holder.pid) != ancestors.end()) {
      return holder.pid;
    }
  }
  return std::nullopt;
}

/// What a person at a terminal sees after a second of waiting: LOCK (or the
/// descriptor), the mode wanted, the seconds waited and the timeout, and, for
/// a lock file, who holds it and how many wait, fitted to `columns`.
WaitLine::Describe describe_the_wait(const LockOptions& options, const std::string& name,
                                     const std::function<Result<LockStatus>()>& query) {
  return [&options, name, query](std::chrono::seconds waited, size_t columns) {
    WaitFacts facts{.waited = waited, .lock = name, .mode = options.mode_name};
    if (options.timeout) {
      facts.timeout = std::chrono::duration<double>(*options.timeout).count();
    }
    if (query) {
      if (auto status = query()) {
        facts.holds = name_holds(status.value().holders);
        facts.ancestor = ancestor_holder(status.value());
        facts.status = std::move(status.value());
      }
    }
    return wait_text(facts, columns);
  };
}

/// With -v and no waiting line: the line that says, every
/// `options.verbose_interval`, that the wait goes on, and who holds the lock
/// where `query` can be asked from another thread (empty otherwise).
WaitReminder::Say say_it_still_waits(const LockOptions& options, const std::string& name,
                                     const std::function<Result<LockStatus>()>& query) {
  return [&options, name, query](std::chrono::seconds waited) {
    std::string holders;
    if (query) {
      const auto status = query();
      holders = status ? who_holds(status.value()) : std::string();
    }
    verbose("still waiting {} s{} for {} ({}){}", waited.count(),
            options.timeout ? fmt::format(" of {} s", std::chrono::duration<double>(*options.timeout).count())
                            : "",
            escape_text(name), options.mode_name, holders);
  };
}

/// What a wait shows until it ends: the waiting line on a terminal, or
/// -v's reminders; destroying it erases the one and stops the other.
struct WaitShown {
  std::optional<WaitLine> line;
  std::optional<WaitReminder> reminder;
};

/// The wait hook of an acquire: -v's line, and on a terminal the waiting
/// line, elsewhere -v's reminders, which `shown` holds until the caller
/// destroys it.
WaitHook on_wait(const LockOptions& options, const std::string& name, WaitShown& shown,
                 const std::function<Result<LockStatus>()>& query, bool query_from_thread) {
  const bool show_line = !options.quiet && stderr_is_terminal();
  auto say = say_what_it_waits_for(options, name, query);
  if (!say && !show_line) {
    return {};
  }
  return [&options, name, &shown, query, query_from_thread, show_line, say = std::move(say)] {
    const auto thread_query = query_from_thread ? query : nullptr;
    if (say) {
      say();
    }
    if (show_line) {
      shown.line.emplace(describe_the_wait(options, name, thread_query));
    } else if (say) {
      shown.reminder.emplace(options.verbose_interval, say_it_still_waits(options, name, thread_query));
    }
  };
}

/// With -v, after a timeout: who was in the way.
void say_it_gave_up(const LockOptions& options, const std::string& name, Clock::time_point start,
                    const std::function<Result<LockStatus>()>& query) {
  if (!verbose_enabled()) {
    return;
  }
  const auto status = query();
  verbose("gave up on {} ({}) after {:.3f} s{}", escape_text(name), options.mode_name, seconds_since(start),
          status ? who_holds(status.value()) : std::string());
}

/// Why a remote lock was lost, handed from the thread that noticed to the
/// one that reports it.
class LostNotice {
public:
  void set(const std::string& reason) {
    std::lock_guard guard(m_mutex);
    m_reason = reason;
    m_lost = true;
  }
  std::optional<std::string> reason() const {
    std::lock_guard guard(m_mutex);
    return m_lost ? std::optional<std::string>(m_reason) : std::nullopt;
  }

private:
  mutable std::mutex m_mutex;
  bool m_lost = false;
  std::string m_reason;
};

/// What opening LOCK needs besides its name.
BackendOptions backend_options(const LockOptions& options) {
  return BackendOptions{
      .file = {.access = options.mode, .create = !options.no_create, .create_mode = options.create_mode},
      .slots = options.slots,
      .on_replaced =
          [name = options.lock_path] {
            verbose("{} was replaced or removed while waiting; waiting again on the file it names now",
                    escape_text(name));
          },
  };
}

/// Waits for `lock` as the options say, with -v's lines and the waiting
/// line; the hold, or std::nullopt when the timeout passed (and -v said who
/// was in the way).
std::optional<Hold> acquire(Lock& lock, const LockOptions& options, const std::string& name) {
  const auto start = Clock::now();
  const std::function<Result<LockStatus>()> query = [&lock] { return lock.status(); };
  WaitShown shown;
  auto hold = value_or_fail(lock.acquire(options.mode, options.timeout,
                                         on_wait(options, name, shown, query, lock.status_is_local())));
  shown.line.reset();
  shown.reminder.reset();
  if (!hold) {
    say_it_gave_up(options, name, start, query);
    return std::nullopt;
  }
  verbose("locked {} ({}{}) after {:.3f} s{}", escape_text(name), options.mode_name,
          hold->slot ? fmt::format(", slot {} of {}", *hold->slot, options.slots.value_or(1)) : "",
          seconds_since(start), hold->detail.empty() ? "" : ", " + hold->detail);
  return hold;
}

/// Locks an inherited descriptor and leaves it locked: the lock stays with
/// the open file that the shell shares.
int lock_descriptor(const LockOptions& options) {
  const std::string name = "descriptor " + std::to_string(*options.fd);
  auto lock = value_or_fail(adopt_descriptor(handle_from_number(*options.fd), name, options.slots));
  const auto hold = acquire(*lock, options, name);
  if (hold && hold->slot) {
    // The shell has no other way to learn it: slot=$(fasten exclusive --slots 4 --fd 9)
    write_output(std::to_string(*hold->slot) + "\n");
  }
  return hold ? 0 : options.conflict_exit_code;
}

int unlock_descriptor(const LockOptions& options) {
  const std::string name = "descriptor " + std::to_string(*options.fd);
  value_or_fail(unlock_open_file(handle_from_number(*options.fd), name));
  verbose("unlocked {}", escape_text(name));
  return 0;
}

/// What the command is to be: its argv, the lock's descriptor unless -o, and
/// its end tied to fasten's, or to the lock's, where it does not hold the
/// lock by itself.
run::CommandSpec command_spec(const LockOptions& options, const Hold& hold, const run::StopRequest& stop) {
  const bool can_be_lost = static_cast<bool>(hold.on_lost);
  const bool inherits_lock = !options.close_fd && hold.handle && hold.held_by_copies;
  return run::CommandSpec{
      .argv = options.command,
      .inherit_fd = options.close_fd ? std::nullopt : hold.handle,
      // A command that does not hold the lock itself must not outlive
      // fasten: with -o, where locks belong to the process and not to the
      // open file the command inherits, and for a lock that fasten keeps.
      .die_with_parent = !inherits_lock || can_be_lost,
      // With -o, a copy in the keeper keeps the lock until all the command
      // started is gone, should fasten die.
      .keeper_keeps = options.close_fd && hold.held_by_copies ? hold.handle : std::nullopt,
      // A lock that can be lost stops the command, all of it.
      .own_process_group = can_be_lost,
      .stop = can_be_lost ? &stop : nullptr,
      .grace = options.grace,
  };
}

/// The failure of a command that could not start. A "command" that is an
/// option (`fasten exclusive L -v cmd`) was meant for fasten, which reads
/// none after LOCK.
Failure command_failure(const LockOptions& options, const Error& error) {
  std::string line = error_line(error);
  const std::string& name = options.command.front();
  if (error.kind() == ErrorKind::not_found && name.starts_with('-')) {
    line += "; fasten's options go before LOCK: fasten " + options.mode_name + " " + escape_text(name) +
            " LOCK COMMAND";
  }
  return Failure(exit_status_for(error), line);
}

/// What the command learns of its lock from its environment. fasten's own
/// environment is the simplest way to hand it on; a lock's own threads never
/// read it.
void set_command_environment(const LockOptions& options, const Hold& hold) {
  run::set_environment("FASTEN_LOCK", options.lock_path);
  run::set_environment("FASTEN_MODE", options.mode_name);
  // Unset without a slot: one inherited from an outer fasten is not this lock's.
  if (hold.slot) {
    run::set_environment("FASTEN_SLOT", std::to_string(*hold.slot));
  } else {
    run::unset_environment("FASTEN_SLOT");
  }
  for (const auto& [variable, value] : hold.environment) {
    run::set_environment(variable, value);
  }
}

} // namespace

run::ExitStatus run_holding_lock(const LockOptions& options, const Backend& backend) {
  const std::string& name = options.lock_path;
  // Made before the lock, and so gone after it: the lock's thread may
  // request a stop for as long as the lock exists.
  run::StopRequest stop;
  LostNotice lost;
  std::unique_ptr<Lock> lock = value_or_fail(backend.open(name, backend_options(options)));
  const auto hold = acquire(*lock, options, name);
  if (!hold) {
    return run::ExitStatus::exited(options.conflict_exit_code);
  }
  const auto acquired = Clock::now();
  set_command_environment(options, *hold);
  if (hold->on_lost) {
    hold->on_lost([&](const std::string& reason) {
      lost.set(reason);
      stop.request();
    });
  }
  const run::CommandSpec command = command_spec(options, *hold, stop);
  if (options.no_fork) {
    throw command_failure(options, run::exec_in_place(command));
  }
  if (const auto reason = lost.reason()) {
    (void)lock->release();
    throw Failure(exit_code::k_lock_lost,
                  "lost the lock " + escape_text(name) + ": " + *reason + "; the command was not started");
  }
  auto ended = run::run_and_wait(command);
  // Release explicitly: a daemon the command left behind may still hold a
  // copy of the descriptor, and must not keep the lock.
  const auto released = lock->release();
  if (ended && ended->stopped) {
    throw Failure(exit_code::k_lock_lost, "lost the lock " + escape_text(name) + ": " +
                                              lost.reason().value_or("") + "; the command was stopped");
  }
  if (!released) {
    report_error(error_line(released.error()));
  }
  verbose("unlocked {} ({}) after holding it {:.3f} s", escape_text(name), options.mode_name,
          seconds_since(acquired));
  if (!ended) {
    throw command_failure(options, ended.error());
  }
  return ended->status;
}

int run_lock_command(const LockOptions& options, const Backend& backend) {
  if (options.verbose) {
    enable_verbose();
  }
  run::end_on_termination_signals();
  switch (options.action) {
  case LockOptions::Action::lock_descriptor:
    return lock_descriptor(options);
  case LockOptions::Action::unlock_descriptor:
    return unlock_descriptor(options);
  case LockOptions::Action::show_status:
    return run_status(options.lock_path, options.json, backend, backend_options(options));
  case LockOptions::Action::run_command:
    break;
  }
  run::exit_like(run_holding_lock(options, backend));
}

} // namespace fasten::cli
