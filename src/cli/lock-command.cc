#include "cli/lock-command.h"

#include "cli/diagnostics.h"
#include "cli/status-command.h"
#include "run/exit-codes.h"
#include "run/spawn.h"

namespace fasten::cli {

int exit_status_for(const Error& error) {
  switch (error.kind()) {
  case ErrorKind::open:
    return exit_code::k_no_input;
  case ErrorKind::lock:
  case ErrorKind::misuse:
    return exit_code::k_lock_failed;
  case ErrorKind::system:
    break;
  }
  return exit_code::k_os_error;
}

namespace {

using Clock = std::chrono::steady_clock;

int exit_status_for(const run::SpawnError& error) {
  switch (error.kind) {
  case run::SpawnError::Kind::not_found:
    return exit_code::k_not_found;
  case run::SpawnError::Kind::not_executable:
    return exit_code::k_not_executable;
  case run::SpawnError::Kind::system:
    break;
  }
  return exit_code::k_os_error;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Waits for the lock as the options say. With -v, a first try without
/// waiting tells whether there is anything to wait for, and says so.
Outcome acquire(LockFile& lock, const LockOptions& options, const std::string& name) {
  if (!verbose_enabled() || options.timeout == std::chrono::nanoseconds(0)) {
    return value_or_fail(lock.acquire(options.mode, options.timeout));
  }
  const auto start = Clock::now();
  if (value_or_fail(lock.acquire(options.mode, std::chrono::nanoseconds(0))) == Outcome::acquired) {
    return Outcome::acquired;
  }
  // Whom it waits for: the same look at the kernel's tables as `status`. A
  // descriptor is looked up through /proc/self/fd.
  const auto status =
      query_status(options.fd ? "/proc/self/fd/" + std::to_string(*options.fd) : options.lock_path);
  const std::string holders = status ? "; it is " + describe_holders(status.value()) : std::string();
  if (options.timeout) {
    verbose("waiting up to {} s to lock {} ({}){}", std::chrono::duration<double>(*options.timeout).count(),
            name, options.mode_name, holders);
  } else {
    verbose("waiting to lock {} ({}){}", name, options.mode_name, holders);
  }
  Timeout left = options.timeout;
  if (left) {
    left = std::max(std::chrono::nanoseconds(0), *left - (Clock::now() - start));
  }
  return value_or_fail(lock.acquire(options.mode, left));
}

/// Locks an inherited descriptor and leaves it locked: the lock stays with
/// the open file that the shell shares.
int lock_descriptor(const LockOptions& options) {
  const std::string name = "descriptor " + std::to_string(*options.fd);
  const auto start = Clock::now();
  LockFile lock = value_or_fail(LockFile::adopt(handle_from_number(*options.fd), name));
  const Outcome outcome = acquire(lock, options, name);
  lock.abandon();
  if (outcome == Outcome::timed_out) {
    verbose("gave up on {} ({}) after {:.3f} s", name, options.mode_name, seconds_since(start));
    return options.conflict_exit_code;
  }
  verbose("locked {} ({}) after {:.3f} s", name, options.mode_name, seconds_since(start));
  return 0;
}

int unlock_descriptor(const LockOptions& options) {
  const std::string name = "descriptor " + std::to_string(*options.fd);
  value_or_fail(unlock_open_file(handle_from_number(*options.fd), name));
  verbose("unlocked {}", name);
  return 0;
}

} // namespace

int run_lock_command(const LockOptions& options) {
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
    return run_status(options.lock_path, options.json);
  case LockOptions::Action::run_command:
    break;
  }

  const auto start = Clock::now();
  // From UTF-8, which a path made from a plain string is not on Windows.
  const std::filesystem::path lock_path(std::u8string(options.lock_path.begin(), options.lock_path.end()));
  LockFile lock = value_or_fail(LockFile::open(
      lock_path,
      OpenOptions{.access = options.mode, .create = !options.no_create, .create_mode = options.create_mode}));
  if (acquire(lock, options, options.lock_path) == Outcome::timed_out) {
    verbose("gave up on {} ({}) after {:.3f} s", options.lock_path, options.mode_name, seconds_since(start));
    return options.conflict_exit_code;
  }
  const auto acquired = Clock::now();
  verbose("locked {} ({}) after {:.3f} s", options.lock_path, options.mode_name, seconds_since(start));

  // fasten is single-threaded, so its own environment is the simplest way to
  // hand these to the command.
  run::set_environment("FASTEN_LOCK", options.lock_path);
  run::set_environment("FASTEN_MODE", options.mode_name);
  run::CommandSpec command{
      .argv = options.command,
      .inherit_fd = options.close_fd ? std::nullopt : std::optional<NativeHandle>(lock.native_handle()),
      // A command that does not hold the lock itself must not outlive fasten:
      // with -o, or where locks belong to the process and not to the open
      // file the command inherits.
      .die_with_parent = options.close_fd || !locks_belong_to_open_files(),
  };
  if (options.no_fork) {
    const auto error = run::exec_in_place(command);
    throw Failure(exit_status_for(error), error.message());
  }

  auto ended = run::run_and_wait(command);
  // Release explicitly: a daemon the command left behind may still hold a
  // copy of the descriptor, and must not keep the lock.
  const auto released = lock.release();
  if (!released) {
    report_error(released.error().message());
  }
  verbose("unlocked {} ({}) after holding it {:.3f} s", options.lock_path, options.mode_name,
          seconds_since(acquired));
  if (!ended) {
    throw Failure(exit_status_for(ended.error()), ended.error().message());
  }
  run::exit_like(ended.value());
}

} // namespace fasten::cli
