#include "cli/lock-command.h"

#include <algorithm>
#include <mutex>
#include <optional>

#include "cli/diagnostics.h"
#include "cli/escape.h"
#include "cli/nesting.h"
#include "cli/status-command.h"
#include "cli/terminal.h"
#include "cli/wait-line.h"
#include "cli/wait-text.h"
#include "lock/backend.h"
#include "lock/deadline.h"
#include "run/exit-status.h"
#include "run/exit-codes.h"
#include "run/program.h"
#include "run/spawn.h"

namespace fasten::cli {

namespace {

using Clock = std::chrono::steady_clock;

/// The instant -v's durations count from. Only -v's lines show them, so the
/// clock is read only with -v: a plain run reads none (lock/deadline.h says
/// why). verbose() computes its arguments with or without -v.
Clock::time_point verbose_clock() {
  return verbose_enabled() ? Clock::now() : Clock::time_point{};
}

double seconds_since(Clock::time_point start) {
  return verbose_enabled() ? std::chrono::duration<double>(Clock::now() - start).count() : 0.0;
}

/// "; it is exclusive, held by ..."
std::string who_holds(const LockStatus& status) {
  return "; it is " + describe_holders(status);
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

/// Which remote lock was lost and why, handed from the thread that noticed
/// to the one that reports it. The first loss is the one reported.
class LostNotice {
public:
  void set(const std::string& name, const std::string& reason) {
    std::lock_guard guard(m_mutex);
    if (!m_lost) {
      m_name = name;
      m_reason = reason;
      m_lost = true;
    }
  }
  /// "NAME: reason", or std::nullopt while nothing was lost.
  std::optional<std::string> what() const {
    std::lock_guard guard(m_mutex);
    return m_lost ? std::optional<std::string>(escape_text(m_name) + ": " + m_reason) : std::nullopt;
  }

private:
  mutable std::mutex m_mutex;
  bool m_lost = false;
  std::string m_name;
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
/// line, after `before_wait` (which may refuse to wait); the hold, or
/// std::nullopt when the timeout passed (and -v said who was in the way).
std::optional<Hold> acquire(Lock& lock, const LockOptions& options, const std::string& name,
                            const WaitHook& before_wait = {}) {
  const auto start = verbose_clock();
  const std::function<Result<LockStatus>()> query = [&lock] { return lock.status(); };
  WaitShown shown;
  const WaitHook shown_hook = on_wait(options, name, shown, query, lock.status_is_local());
  const WaitHook hook = [&] {
    if (before_wait) {
      before_wait();
    }
    if (shown_hook) {
      shown_hook();
    }
  };
  auto hold = value_or_fail(
      lock.acquire(options.mode, options.timeout, before_wait || shown_hook ? hook : WaitHook()));
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
  const NativeHandle descriptor = handle_from_number(*options.fd);
  auto lock = value_or_fail(adopt_descriptor(descriptor, name, options.slots));
  const auto hold =
      acquire(*lock, options, name, refuse_to_wait_for_an_ancestor_on(descriptor, name, options));
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

/// What the command is to be: its argv, the first lock's descriptor unless
/// -o, and its end tied to fasten's, or to the locks', where it does not hold
/// them all by itself. `can_be_lost`: one of the locks can be lost while held.
run::CommandSpec command_spec(const LockOptions& options, const Hold& hold, bool can_be_lost,
                              const run::StopRequest& stop) {
  const bool inherits_lock = !options.close_fd && hold.handle && hold.held_by_copies;
  return run::CommandSpec{
      .argv = options.command,
      .inherit_fd = options.close_fd ? std::nullopt : hold.handle,
      // A command that does not hold the lock itself must not outlive
      // fasten: with -o, where locks belong to the process and not to the
      // open file the command inherits, for a lock that fasten keeps, and
      // with several locks, of which it inherits the first only.
      .die_with_parent = !inherits_lock || can_be_lost || !options.also.empty(),
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
    const std::string value = option_value_text(name);
    line += "; fasten's options go before LOCK: fasten " + options.mode_name + " " + escape_text(name) +
            (value.empty() ? "" : " " + value) + " LOCK COMMAND";
  }
  return Failure(exit_status_for(error), line);
}

/// One lock of the command line: what was asked, the options it is taken
/// with (LOCK, MODE and the time left are its own), the lock once open, and
/// its hold once taken. The options live as long as the lock, whose hooks
/// refer to them.
struct Taken {
  LockRequest request;
  /// Its place among the locks named: 0 for LOCK, then each --also.
  size_t given_at = 0;
  LockOptions options;
  std::unique_ptr<Lock> lock{};
  /// Refuses, once the lock is found not free, a wait for an ancestor's
  /// hold (cli/nesting.h).
  WaitHook before_wait{};
  LockPlace place{};
  std::optional<Hold> hold{};
};

using TakenLocks = std::vector<std::unique_ptr<Taken>>;

/// The options for one of several locks: LOCK and MODE are its own.
LockOptions options_for(const LockOptions& options, const LockRequest& request) {
  LockOptions one = options;
  one.lock_path = request.path;
  one.mode_name = request.mode_name;
  one.mode = request.mode;
  one.also.clear();
  return one;
}

/// Puts several locks in the one order they are taken in (LockPlace), and
/// refuses one lock named twice by two names (two paths of one file).
void put_in_order(TakenLocks& locks) {
  for (auto& taken : locks) {
    taken->place = value_or_fail(taken->lock->place());
  }
  std::ranges::stable_sort(locks, {}, [](const auto& taken) { return taken->place; });
  const auto twice = std::ranges::adjacent_find(locks, {}, [](const auto& taken) { return taken->place; });
  if (twice != locks.end()) {
    const auto& [first, second] = std::minmax((*twice)->given_at, (*std::next(twice))->given_at);
    const auto& at = [&](size_t given_at) -> const LockRequest& {
      return (*std::ranges::find(locks, given_at, [](const auto& taken) { return taken->given_at; }))
          ->request;
    };
    throw Failure(exit_code::k_usage, lock_named_twice(at(first), at(second)));
  }
}

/// Opens every lock of the command line, in the order they are to be taken.
TakenLocks open_locks(const LockOptions& options, const Backend& backend) {
  TakenLocks locks;
  for (const auto& request : named_locks(options)) {
    auto taken = std::make_unique<Taken>(
        Taken{.request = request, .given_at = locks.size(), .options = options_for(options, request)});
    // An ancestor's hold on the lock is re-entered, or a wait for it refused.
    Reentry reentry = reentry_for(request.path, taken->options.mode, taken->options);
    taken->lock = reentry.lock ? std::move(reentry.lock)
                               : value_or_fail(backend.open(request.path, backend_options(taken->options)));
    taken->before_wait = std::move(reentry.before_wait);
    locks.push_back(std::move(taken));
  }
  if (locks.size() > 1) {
    put_in_order(locks);
  }
  return locks;
}

/// Lets go of the locks taken so far, the last taken first.
void release_taken(TakenLocks& locks) {
  for (auto taken = locks.rbegin(); taken != locks.rend(); ++taken) {
    if ((*taken)->hold) {
      (*taken)->hold.reset();
      if (const auto released = (*taken)->lock->release(); !released) {
        report_error(error_line(released.error()));
      }
      verbose("unlocked {} ({})", escape_text((*taken)->request.path), (*taken)->request.mode_name);
    }
  }
}

/// Takes every lock, in order, within the one timeout; false when one was
/// not had in time, after letting go of the ones taken before it and, with
/// several, saying which one was in the way.
bool acquire_all(TakenLocks& locks, const LockOptions& options) {
  const Deadline deadline(options.timeout);
  for (size_t i = 0; i < locks.size(); ++i) {
    Taken& taken = *locks[i];
    if (i > 0 && !deadline.is_forever()) {
      // What is left of the one timeout, in whole milliseconds for -v's lines.
      taken.options.timeout = std::chrono::floor<std::chrono::milliseconds>(deadline.left());
    }
    taken.hold = acquire(*taken.lock, taken.options, taken.request.path, taken.before_wait);
    if (!taken.hold) {
      release_taken(locks);
      if (locks.size() > 1) {
        report_error(escape_text(taken.request.path) + " (" + taken.request.mode_name +
                     ") was not free in time (lock " + std::to_string(i + 1) + " of " +
                     std::to_string(locks.size()) +
                     " in fasten's order); none is held and the command did not run");
      }
      return false;
    }
  }
  return true;
}

/// The locks in the order the command line names them, LOCK first.
std::vector<const Taken*> as_named(const TakenLocks& locks) {
  std::vector<const Taken*> named;
  for (const auto& taken : locks) {
    named.push_back(taken.get());
  }
  std::ranges::sort(named, {}, &Taken::given_at);
  return named;
}

/// The value of `variable` in the hold's environment, if it gives one.
std::optional<std::string> hold_variable(const Hold& hold, std::string_view variable) {
  const auto found =
      std::ranges::find(hold.environment, variable, [](const auto& pair) { return pair.first; });
  return found == hold.environment.end() ? std::nullopt : std::optional<std::string>(found->second);
}

/// What the command learns of its locks from its environment: FASTEN_LOCK,
/// FASTEN_MODE and FASTEN_SLOT of LOCK, FASTEN_LOCKS of them all, and the
/// holds' own variables, those of the first named that gives each. fasten's
/// own environment is the simplest way to hand them on; a lock's own threads
/// never read it.
void set_command_environment(const LockOptions& options, const TakenLocks& locks) {
  const auto named = as_named(locks);
  const Hold& hold = *named.front()->hold;
  run::set_environment("FASTEN_LOCK", options.lock_path);
  run::set_environment("FASTEN_MODE", options.mode_name);
  // Unset without a slot: one inherited from an outer fasten is not this lock's.
  if (hold.slot) {
    run::set_environment("FASTEN_SLOT", std::to_string(*hold.slot));
  } else {
    run::unset_environment("FASTEN_SLOT");
  }
  std::vector<HeldLock> held;
  for (const Taken* taken : named) {
    held.push_back({.mode_name = taken->request.mode_name,
                    .path = taken->request.path,
                    .fencing_token = hold_variable(*taken->hold, "FASTEN_FENCING_TOKEN")});
  }
  run::set_environment("FASTEN_LOCKS", locks_variable(held));
  for (auto taken = named.rbegin(); taken != named.rend(); ++taken) {
    for (const auto& [variable, value] : (*taken)->hold->environment) {
      run::set_environment(variable, value);
    }
  }
}

/// Has a loss of any lock that can be lost request the command's stop, and
/// shares each such lock's deadline with the command's keeper, which stops
/// the command itself should fasten not (run/spawn.h, StopBy); whether one
/// can be lost.
bool stop_when_lost(const TakenLocks& locks, LostNotice& lost, run::StopRequest& stop) {
  // Before any loss can request a stop.
  if (std::ranges::any_of(
          locks, [](const auto& taken) { return taken->hold->on_lost || taken->hold->share_deadline; })) {
    stop.share_with_keeper();
  }
  bool can_be_lost = false;
  size_t shared = 0;
  for (const auto& taken : locks) {
    if (taken->hold->on_lost) {
      can_be_lost = true;
      taken->hold->on_lost([&lost, &stop, name = taken->request.path](const std::string& reason) {
        lost.set(name, reason);
        stop.request();
      });
    }
    if (taken->hold->share_deadline && stop.stop_by() != nullptr) {
      // As many as options allow locks (k_max_locks), so each has its own.
      taken->hold->share_deadline(&stop.stop_by()->at.at(shared++));
    }
  }
  return can_be_lost;
}

/// What the line says of a lock lost while the command ran: the loss fasten
/// saw, or else that the keeper stopped the command at a lock's deadline
/// while fasten could not run.
std::string lost_while_running(const TakenLocks& locks, const LostNotice& lost) {
  if (const auto what = lost.what()) {
    return *what;
  }
  const auto shared =
      std::ranges::find_if(locks, [](const auto& taken) { return bool(taken->hold->share_deadline); });
  const std::string name = shared == locks.end() ? locks.front()->request.path : (*shared)->request.path;
  return escape_text(name) + ": it was not renewed in time while fasten could not run";
}

/// Whether a lock's release may wait for nested fastens that re-entered it
/// (lock/nesting.h): an exclusive hold of an open file.
bool release_may_wait(const TakenLocks& locks) {
  return std::ranges::any_of(locks, [](const auto& taken) {
    return taken->hold->handle && taken->options.mode == LockMode::exclusive;
  });
}

/// Lets go of every lock once the command has ended, the last taken first.
void release_after_command(TakenLocks& locks, Clock::time_point acquired) {
  for (auto taken = locks.rbegin(); taken != locks.rend(); ++taken) {
    const auto released = (*taken)->lock->release();
    if (!released) {
      report_error(error_line(released.error()));
    }
    verbose("unlocked {} ({}) after holding it {:.3f} s", escape_text((*taken)->request.path),
            (*taken)->request.mode_name, seconds_since(acquired));
  }
}

} // namespace

std::string locks_variable(const std::vector<HeldLock>& locks) {
  std::string text;
  for (const auto& lock : locks) {
    text += (text.empty() ? "" : "\n") + lock.mode_name + " " + lock.fencing_token.value_or("-") + " " +
            lock.path;
  }
  return text;
}

run::ExitStatus run_holding_lock(const LockOptions& options, const Backend& backend) {
  // Made before the locks, and so gone after them: a lock's thread may
  // request a stop for as long as the lock exists.
  run::StopRequest stop;
  LostNotice lost;
  TakenLocks locks = open_locks(options, backend);
  if (!acquire_all(locks, options)) {
    return run::ExitStatus::exited(options.conflict_exit_code);
  }
  const auto acquired = verbose_clock();
  set_command_environment(options, locks);
  const bool can_be_lost = stop_when_lost(locks, lost, stop);
  const run::CommandSpec command = command_spec(options, *as_named(locks).front()->hold, can_be_lost, stop);
  if (options.no_fork) {
    throw command_failure(options, run::exec_in_place(command));
  }
  if (const auto what = lost.what()) {
    release_taken(locks);
    throw Failure(exit_code::k_lock_lost, "lost the lock " + *what + "; the command was not started");
  }
  auto ended = run::run_and_wait(command);
  if (release_may_wait(locks)) {
    // Its release may wait for nested fastens that re-entered the hold
    // (lock/nesting.h): meanwhile a signal ends fasten, as while it waits
    // for the lock, and the nested ones keep the open file, and the lock.
    run::end_on_termination_signals();
  }
  // Release explicitly: a daemon the command left behind may still hold a
  // copy of the descriptor, and must not keep the lock.
  release_after_command(locks, acquired);
  // Stopped by fasten, or by its keeper when fasten could not (stopped
  // itself past a lease's deadline): the lock was lost either way.
  const bool keeper_stopped = stop.stop_by() != nullptr && stop.stop_by()->keeper_stopped.load();
  if (ended && (ended->stopped || keeper_stopped)) {
    throw Failure(exit_code::k_lock_lost,
                  "lost the lock " + lost_while_running(locks, lost) + "; the command was stopped");
  }
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
