#include "cli/options.h"

#include "cli/cli11.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "cli/escape.h"
#include "cli/exit-meanings.h"
#include "etcd/syntax.h"
#include "fasten-config.h"
#include "lock/status.h"
#include "lock/backend.h"
#include "lock/protocol.h"
#include "run/exit-codes.h"
#include "run/spawn.h"

namespace fasten::cli {

namespace {

/// The options as CLI11 hands them over, before they are checked.
struct RawOptions {
  std::string timeout;
  bool nonblock = false;
  std::string conflict_exit_code;
  std::string command_string;
  bool close_fd = false;
  bool no_fork = false;
  std::string mode;
  bool no_create = false;
  bool verbose = false;
  bool quiet = false;
  bool json = false;
  std::string fd;
  std::string ttl;
  std::string grace;
  std::string slots;
  std::string lock_path;
  /// --also MODE LOCK, given any number of times: MODE, LOCK, MODE, LOCK...
  std::vector<std::string> also;
  std::vector<std::string> rest;
};

struct UsageError {
  std::string message;
};

bool all_of(std::string_view text, std::string_view allowed) {
  return text.find_first_not_of(allowed) == std::string_view::npos;
}

std::optional<int> parse_exit_code(std::string_view text) {
  int value = 0;
  if (text.empty() || text.size() > 3 || !all_of(text, "0123456789")) {
    return std::nullopt;
  }
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value <= 255 ? std::optional<int>(value) : std::nullopt;
}

std::optional<int> parse_descriptor(std::string_view text) {
  int value = -1;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < 0) {
    return std::nullopt;
  }
  return value;
}

/// Whole seconds for a lease: etcd counts TTLs in seconds.
std::optional<std::chrono::seconds> parse_ttl(std::string_view text) {
  long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < 1 ||
      value > 86400) {
    return std::nullopt;
  }
  return std::chrono::seconds(value);
}

/// A whole number from 1 to k_max_slots.
std::optional<int> parse_slots(std::string_view text) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < 1 ||
      value > protocol::k_max_slots) {
    return std::nullopt;
  }
  return value;
}

std::optional<unsigned> parse_octal_mode(std::string_view text) {
  if (text.empty() || !all_of(text, "01234567")) {
    return std::nullopt;
  }
  // Leading zeros as chmod(1) reads them: 00644 is 0644.
  const std::string_view digits = text.substr(std::min(text.find_first_not_of('0'), text.size()));
  if (digits.size() > 4) {
    return std::nullopt;
  }
  unsigned value = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), value, 8);
  // Permission bits only: set-id and sticky bits mean nothing on a lock file.
  return value <= 0777 ? std::optional<unsigned>(value) : std::nullopt;
}

/// The largest value of -w and --grace: a deadline must fit in a signed
/// 64-bit count of nanoseconds from now.
constexpr double k_max_seconds = 1e9;

std::string max_seconds_text() {
  return std::to_string(static_cast<long long>(k_max_seconds));
}

/// "64 usage, 66 LOCK cannot be opened", from the one list of exit statuses.
std::string status_meanings(std::initializer_list<int> wanted) {
  std::string text;
  for (const auto& [status, meaning] : k_statuses) {
    if (wanted.size() == 0 || std::find(wanted.begin(), wanted.end(), status) != wanted.end()) {
      text += std::to_string(status) + " " + std::string(meaning) + ", ";
    }
  }
  return text;
}

void add_descriptor_and_etcd_options(CLI::App* sub, RawOptions& raw);

void fill_lock_subcommand(CLI::App* sub, RawOptions& raw) {
  sub->footer("Exit status: COMMAND's, or " + status_meanings({}) + "128+N signal N. See fasten(1).");
  sub->add_option("-w,--timeout", raw.timeout,
                  "give up after SECONDS (decimal, e.g. 0.25); 0 makes one try; default: wait forever")
      ->option_text("SECONDS")
      // Taken more than once, it is refused in check(), after its value.
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  sub->add_flag("-n,--nonblock", raw.nonblock, "same as --timeout 0");
  sub->add_option("-E,--conflict-exit-code", raw.conflict_exit_code,
                  "exit status (0-255) when the lock was not acquired in time; default " +
                      std::to_string(exit_code::k_conflict))
      ->option_text("N");
  sub->add_option("-c,--command", raw.command_string, "run STRING with /bin/sh -c (cmd.exe /c on Windows)")
      ->option_text("STRING");
  sub->add_flag("-o,--close", raw.close_fd, "do not pass the lock's descriptor to COMMAND");
  sub->add_flag("-F,--no-fork", raw.no_fork,
                "exec COMMAND in place: it keeps fasten's pid and holds the lock itself");
  sub->add_option("--mode", raw.mode,
                  "permissions for a lock file that fasten creates (default 0666 less the umask)")
      ->option_text("OCTAL");
  sub->add_flag("--no-create", raw.no_create, "fail if LOCK does not exist");
  sub->add_option("--slots", raw.slots,
                  "exclusive and write: a counting semaphore, up to N commands hold LOCK at once, each in a "
                  "slot of its own (FASTEN_SLOT, 0 to N-1); a write lock without --slots drains them")
      ->option_text("N");
  sub->add_option(
         "--also", raw.also,
         "hold LOCK2 too, in MODE (exclusive, read or write), while COMMAND runs; give it once for each "
         "lock (--also read /var/db.lock). All or none: COMMAND starts once every lock is held, and "
         "fasten takes them in one order whatever the order given, so that two fastens cannot deadlock")
      ->option_text("MODE LOCK2")
      // Two words each time, and no more: LOCK follows.
      ->type_size(2)
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_flag("-v,--verbose", raw.verbose,
                "say on stderr what it waits for, when it got the lock, and when it released it");
  sub->add_flag("-q,--quiet", raw.quiet,
                "no waiting line: on a terminal, fasten otherwise shows what it has waited for after a "
                "second, and for whom");
  add_descriptor_and_etcd_options(sub, raw);
  sub->add_option(
      "LOCK", raw.lock_path,
      "the lock file (created if missing, never written), or etcd://HOST:PORT[,HOST:PORT...]/NAME");
  // Only for --help: split_at_lock() takes the command off before CLI11 parses,
  // so that CLI11 never sees (or rewrites) a word of it.
  sub->add_option("COMMAND", raw.rest,
                  "the command and its arguments, passed on untouched: LOCK [--] COMMAND "
                  "[ARG...], or LOCK -c STRING");
}

/// --fd, and the options of etcd locks, of a lock subcommand.
void add_descriptor_and_etcd_options(CLI::App* sub, RawOptions& raw) {
  // A read lock needs the descriptor open for reading, the others for writing.
  const std::string example = sub->get_name() == "read"
                                  ? "exec 8</run/x.lock; fasten read --fd 8"
                                  : "exec 9>>/run/x.lock; fasten " + sub->get_name() + " --fd 9";
  sub->add_option("--fd", raw.fd,
                  "lock the inherited descriptor N instead of LOCK, then exit, leaving it locked (" +
                      example + ")")
      ->option_text("N");
  sub->add_option("--ttl", raw.ttl,
                  "etcd locks: the lease's time to live in whole seconds, renewed every third of it; how "
                  "long the lock outlives a fasten that died or was cut off (default " +
                      std::to_string(k_default_ttl.count()) + ")")
      ->option_text("SECONDS");
  sub->add_option("--grace", raw.grace,
                  "etcd locks: when the lock is lost, how long COMMAND has between SIGTERM and SIGKILL "
                  "(default " +
                      std::to_string(run::k_default_grace.count()) + ")")
      ->option_text("SECONDS");
}

/// A command line cut in two at LOCK: what CLI11 parses, and the words after
/// LOCK, which belong to the command.
struct SplitArgs {
  std::vector<std::string> options;
  std::vector<std::string> rest;
  /// The first option before LOCK that `sub` does not know, by its name.
  std::string unknown;
};

/// How many values option `name` of `sub` takes (--also two); an unknown one
/// takes none, and the first is kept in `split.unknown`.
size_t values_taken(const CLI::App& sub, const std::string& name, SplitArgs& split) {
  const CLI::Option* option = sub.get_option_no_throw(name);
  if (option == nullptr && split.unknown.empty()) {
    split.unknown = name;
  }
  return option == nullptr ? 0 : static_cast<size_t>(std::max(0, option->get_items_expected_min()));
}

bool takes_value(const CLI::App& sub, const std::string& name, SplitArgs& split) {
  return values_taken(sub, name, split) > 0;
}

/// Takes the long option at args[i] (--timeout 5, --timeout=5, --also read
/// L), and its values; the index of the last word taken.
size_t take_long_option(const CLI::App& sub, const std::vector<std::string>& args, size_t i,
                        SplitArgs& split) {
  const std::string& arg = args[i];
  split.options.push_back(arg);
  const bool has_value = arg.find('=') != std::string::npos;
  size_t values = values_taken(sub, arg.substr(0, arg.find('=')), split);
  if (has_value && values > 0) {
    --values;
  }
  for (; values > 0 && i + 1 < args.size(); --values) {
    split.options.push_back(args[++i]);
  }
  return i;
}

/// Takes the cluster of short options at args[i] one by one (-nv, -w5,
/// -nw 5), and the value of the one that takes a value; the index of the
/// last word taken.
size_t take_short_options(const CLI::App& sub, const std::vector<std::string>& args, size_t i,
                          SplitArgs& split) {
  const std::string& arg = args[i];
  for (size_t c = 1; c < arg.size(); ++c) {
    const std::string name{'-', arg[c]};
    split.options.push_back(name);
    if (takes_value(sub, name, split)) {
      if (c + 1 < arg.size()) {
        split.options.push_back(arg.substr(c + 1));
      } else if (i + 1 < args.size()) {
        split.options.push_back(args[++i]);
      }
      break;
    }
  }
  return i;
}

/// Finds LOCK the way getopt would stop: skipping options, and the values of
/// those that take one as `sub` defines them. Clusters of short options (-nv,
/// -w5, -nw 5) are spelt out one by one on the way, as CLI11 does not read all
/// of them.
SplitArgs split_at_lock(const CLI::App& sub, const std::vector<std::string>& args) {
  SplitArgs split;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--" || arg.size() < 2 || arg[0] != '-') {
      if (arg == "--") {
        split.options.push_back(args[i++]); // so that CLI11 reads a LOCK like "-x" as LOCK
      }
      if (i < args.size()) {
        split.options.push_back(args[i++]);
      }
      break;
    }
    i = arg[1] == '-' ? take_long_option(sub, args, i, split) : take_short_options(sub, args, i, split);
  }
  split.rest.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  return split;
}

/// The subcommands, as the command line names them.
enum class Subcommand { exclusive, read, write, unlock, status };

Subcommand subcommand_named(const std::string& name) {
  static const std::pair<std::string_view, Subcommand> k_names[] = {
      {"exclusive", Subcommand::exclusive}, {"read", Subcommand::read},     {"write", Subcommand::write},
      {"unlock", Subcommand::unlock},       {"status", Subcommand::status},
  };
  const auto* found = std::find_if(std::begin(k_names), std::end(k_names),
                                   [&](const auto& entry) { return entry.first == name; });
  return found->second; // CLI11 takes no other names
}

/// Whether the command line asks for the option `name`. A flag set to false
/// (CLI11 reads --close=false) asks for nothing.
bool given(const CLI::App& sub, const std::string& name) {
  const CLI::Option* option = sub.get_option(name);
  return option->count() > 0 && (option->get_items_expected_max() > 0 || option->as<bool>());
}

/// Two options that do not go together, and what fasten says when both are given.
struct Conflict {
  const char* first;
  const char* second;
  std::string_view message;
};

/// When several are given, the first of these is the one reported.
constexpr std::array k_conflicts{
    Conflict{
        "--no-fork", "--close",
        "-F (--no-fork) and -o (--close) cannot go together: with -F the command itself holds the lock's "
        "descriptor"},
    Conflict{"--fd", "--command", "--fd and --command cannot go together: with --fd there is no command"},
    Conflict{"--fd", "--close", "--fd and --close cannot go together: with --fd there is no command"},
    Conflict{"--fd", "--no-fork", "--fd and --no-fork cannot go together: with --fd there is no command"},
    Conflict{"--fd", "--mode",
             "--fd and --mode cannot go together: with --fd fasten neither opens nor creates a file"},
    Conflict{"--fd", "--no-create",
             "--fd and --no-create cannot go together: with --fd fasten neither opens nor creates a file"},
    Conflict{"--fd", "--ttl", "--fd and --ttl cannot go together: they apply to etcd locks"},
    Conflict{"--fd", "--grace", "--fd and --grace cannot go together: they apply to etcd locks"},
    Conflict{"--fd", "--also", "--fd and --also cannot go together: --fd locks one descriptor"},
    Conflict{"--no-fork", "--also",
             "-F (--no-fork) and --also cannot go together: the command would hold only one of the locks "
             "itself"},
    Conflict{"--slots", "--also",
             "--slots and --also cannot go together: a counting semaphore is taken alone"},
};

void refuse_conflicts(const CLI::App& sub) {
  for (const auto& [first, second, message] : k_conflicts) {
    if (given(sub, first) && given(sub, second)) {
      throw UsageError{std::string(message)};
    }
  }
}

/// --fd leaves a lock with an open file that outlives fasten; where locks
/// belong to the process, it would end with fasten instead.
void require_locks_of_open_files() {
  if (!run::has_inherited_descriptors()) {
    throw UsageError{"--fd is not available on this system: its shells do not hand open files to "
                     "programs by number"};
  }
  if (!locks_belong_to_open_files()) {
    throw UsageError{"--fd needs open-file-description locks, which this build does not use: "
                     "a lock fasten took would end with fasten"};
  }
}

LockOptions check_status(LockOptions options, const RawOptions& raw) {
  if (!raw.rest.empty()) {
    throw UsageError{"status takes one LOCK; unexpected: '" + raw.rest.front() + "'"};
  }
  if (options.lock_path.empty()) {
    throw UsageError{"bad LOCK: the path is empty"};
  }
  if (!status_supported() && !is_etcd_url(options.lock_path)) {
    throw UsageError{"status is not available on this system: it cannot see who holds a lock "
                     "without taking it"};
  }
  options.action = LockOptions::Action::show_status;
  options.json = raw.json;
  return options;
}

void take_descriptor(const CLI::App& sub, const RawOptions& raw, LockOptions& options) {
  if (given(sub, "--fd")) {
    options.fd = parse_descriptor(raw.fd);
    if (!options.fd) {
      throw UsageError{"bad descriptor: '" + raw.fd + "' (expected a number, e.g. 9)"};
    }
  }
}

LockOptions check_unlock(const CLI::App& sub, LockOptions options, const RawOptions& raw) {
  take_descriptor(sub, raw, options);
  if (!options.fd) {
    throw UsageError{"unlock needs --fd N"};
  }
  require_locks_of_open_files();
  options.action = LockOptions::Action::unlock_descriptor;
  return options;
}

/// -w, -n, -E and --mode, in that order.
void take_waiting_and_file_values(const CLI::App& sub, const RawOptions& raw, LockOptions& options) {
  if (given(sub, "--timeout")) {
    options.timeout = parse_seconds(raw.timeout);
    if (!options.timeout) {
      throw UsageError{"bad timeout: '" + raw.timeout + "' (expected seconds up to " + max_seconds_text() +
                       ", e.g. 0.25)"};
    }
  }
  if (raw.nonblock) {
    options.timeout = std::chrono::nanoseconds(0);
  }
  const auto times_given = [&](const char* name) {
    return given(sub, name) ? sub.get_option(name)->count() : 0;
  };
  if (times_given("--timeout") + times_given("--nonblock") > 1) {
    throw UsageError{"more than one timeout (-n is -w 0): give -n or -w SECONDS, once"};
  }
  if (given(sub, "--conflict-exit-code")) {
    const auto code = parse_exit_code(raw.conflict_exit_code);
    if (!code) {
      throw UsageError{"bad conflict exit code: '" + raw.conflict_exit_code + "' (expected 0-255)"};
    }
    options.conflict_exit_code = *code;
  }
  if (given(sub, "--mode")) {
    options.create_mode = parse_octal_mode(raw.mode);
    if (!options.create_mode) {
      throw UsageError{"bad mode: '" + raw.mode + "' (expected octal permissions 0-0777, e.g. 0644)"};
    }
    if (!files_have_permission_bits()) {
      throw UsageError{"--mode is not available on this system: its files have no permission bits"};
    }
  }
}

/// --slots N.
void take_slots(const CLI::App& sub, const RawOptions& raw, LockOptions& options) {
  if (!given(sub, "--slots")) {
    return;
  }
  if (options.mode == LockMode::shared) {
    throw UsageError{"--slots applies to exclusive and write: readers share the lock with slot holders "
                     "without one"};
  }
  options.slots = parse_slots(raw.slots);
  if (!options.slots) {
    throw UsageError{"bad slot count: '" + raw.slots + "' (expected a whole number from 1 to " +
                     std::to_string(protocol::k_max_slots) + ")"};
  }
}

/// The mode that a subcommand's name or --also's MODE names.
std::optional<LockMode> mode_named(std::string_view name) {
  if (name == "read") {
    return LockMode::shared;
  }
  if (name == "exclusive" || name == "write") {
    return LockMode::exclusive;
  }
  return std::nullopt;
}

/// --also MODE LOCK, each time it is given.
void take_also(const RawOptions& raw, LockOptions& options) {
  for (size_t i = 0; i + 1 < raw.also.size(); i += 2) {
    const std::string& mode_name = raw.also[i];
    const auto mode = mode_named(mode_name);
    if (!mode) {
      throw UsageError{"bad mode in --also: '" + escape_text(mode_name) +
                       "' (expected exclusive, read or write, then the lock: --also read /var/db.lock)"};
    }
    if (raw.also[i + 1].empty()) {
      throw UsageError{"bad LOCK in --also " + mode_name + ": the path is empty"};
    }
    options.also.push_back(LockRequest{.path = raw.also[i + 1], .mode_name = mode_name, .mode = *mode});
  }
  if (options.also.size() + 1 > k_max_locks) {
    throw UsageError{"too many locks: " + std::to_string(options.also.size() + 1) +
                     " (LOCK and each --also), at most " + std::to_string(k_max_locks) + " at once"};
  }
}

/// Whether any lock of the command line is in etcd.
bool names_etcd_lock(const LockOptions& options) {
  const auto locks = named_locks(options);
  return std::ranges::any_of(locks, [](const LockRequest& lock) { return is_etcd_url(lock.path); });
}

/// -F with an etcd LOCK, and --ttl and --grace, which only an etcd LOCK takes.
void take_etcd_values(const CLI::App& sub, const RawOptions& raw, LockOptions& options) {
  const bool remote = names_etcd_lock(options);
  if (remote && options.no_fork) {
    throw UsageError{"-F (--no-fork) cannot hold an etcd lock: fasten must stay to renew its lease"};
  }
  if (given(sub, "--ttl")) {
    const auto ttl = parse_ttl(raw.ttl);
    if (!ttl) {
      throw UsageError{"bad TTL: '" + raw.ttl + "' (expected whole seconds from 1 to 86400)"};
    }
    options.ttl = *ttl;
  }
  if (given(sub, "--grace")) {
    const auto grace = parse_seconds(raw.grace);
    if (!grace) {
      throw UsageError{"bad grace period: '" + raw.grace + "' (expected seconds up to " + max_seconds_text() +
                       ", e.g. 2.5)"};
    }
    options.grace = *grace;
  }
  for (const char* name : {"--ttl", "--grace"}) {
    if (given(sub, name) && !remote && !options.lock_path.empty()) {
      throw UsageError{std::string(name) + " applies to etcd locks only, not to the lock file '" +
                       options.lock_path + "'"};
    }
  }
}

/// `fasten exclusive|read|write --fd N`: no LOCK, no COMMAND.
LockOptions check_lock_descriptor(const CLI::App& sub, LockOptions options, const RawOptions& raw) {
  require_locks_of_open_files();
  if (is_etcd_url(options.lock_path)) {
    throw UsageError{"--fd cannot take an etcd lock ('" + options.lock_path +
                     "'): there is no descriptor to leave it with"};
  }
  refuse_conflicts(sub);
  if (!options.lock_path.empty() || !raw.rest.empty()) {
    const std::string extra = options.lock_path.empty() ? raw.rest.front() : options.lock_path;
    throw UsageError{"--fd takes no LOCK and no COMMAND; unexpected: '" + extra + "'"};
  }
  options.action = LockOptions::Action::lock_descriptor;
  return options;
}

/// `fasten exclusive 9`, `fasten unlock 9`: flock(1)'s descriptor where
/// fasten wants --fd; empty for a word that is no descriptor number.
std::string descriptor_hint(std::string_view verb, const std::string& word) {
  if (!parse_descriptor(word) || !run::has_inherited_descriptors() || !locks_belong_to_open_files()) {
    return {};
  }
  const std::string flock = verb == "unlock" ? "flock -u " : "flock ";
  return "; to " + std::string(verb) + " the open descriptor " + word + ", as " + flock + word +
         " does, use --fd " + word;
}

/// After LOCK: `-- COMMAND...`, `-c STRING` (flock(1)'s form) or COMMAND...
std::vector<std::string> take_command(const CLI::App& sub, RawOptions& raw, const std::string& lock_path) {
  auto& rest = raw.rest;
  bool command_string = given(sub, "--command");
  if (!rest.empty() && rest.front() == "--") {
    rest.erase(rest.begin());
  } else if (!rest.empty() && (rest.front() == "-c" || rest.front() == "--command")) {
    if (command_string || rest.size() != 2) {
      throw UsageError{"-c takes exactly one STRING, the whole command"};
    }
    raw.command_string = rest[1];
    rest.clear();
    command_string = true;
  }
  if (command_string) {
    if (!rest.empty()) {
      throw UsageError{"-c takes exactly one STRING, the whole command; unexpected: '" + rest.front() + "'"};
    }
    return run::shell_command(raw.command_string);
  }
  if (rest.empty()) {
    throw UsageError{"missing COMMAND after LOCK '" + lock_path + "'" + descriptor_hint("lock", lock_path)};
  }
  return std::move(rest);
}

/// Refuses a lock named twice by the same words (the same file named two
/// ways is found once the files are open), and a name that FASTEN_LOCKS
/// could not list, one lock a line.
void check_several_locks(const LockOptions& options) {
  if (options.also.empty()) {
    return;
  }
  const auto locks = named_locks(options);
  for (auto lock = locks.begin(); lock != locks.end(); ++lock) {
    if (lock->path.find('\n') != std::string::npos) {
      throw UsageError{"LOCK '" + escape_text(lock->path) +
                       "' has a newline in its name, which cannot be one of several locks: FASTEN_LOCKS "
                       "lists them one a line"};
    }
    const auto twice =
        std::find_if(locks.begin(), lock, [&](const auto& other) { return other.path == lock->path; });
    if (twice != lock) {
      throw UsageError{lock_named_twice(*twice, *lock)};
    }
  }
}

/// `fasten exclusive|read|write LOCK COMMAND...`
LockOptions check_run_command(const CLI::App& sub, LockOptions options, RawOptions& raw) {
  refuse_conflicts(sub);
  if (options.no_fork && !run::can_exec_in_place()) {
    throw UsageError{"-F (--no-fork) is not available on this system: a process cannot become the "
                     "command (there is no exec)"};
  }
  if (sub.get_option("LOCK")->count() == 0) {
    throw UsageError{"missing LOCK (a path, an etcd://HOST:PORT/NAME URL, or --fd N)"};
  }
  if (options.lock_path.empty()) {
    throw UsageError{"bad LOCK: the path is empty"};
  }
  check_several_locks(options);
  options.command = take_command(sub, raw, options.lock_path);
  options.action = LockOptions::Action::run_command;
  return options;
}

/// Checks the values CLI11 could only take as text, and splits `-c STRING` or
/// `--` off the arguments after LOCK. Throws UsageError.
LockOptions check(const CLI::App& sub, RawOptions raw) {
  LockOptions options;
  options.mode_name = sub.get_name();
  options.lock_path = std::move(raw.lock_path);
  options.close_fd = raw.close_fd;
  options.no_fork = raw.no_fork;
  options.no_create = raw.no_create;
  options.verbose = raw.verbose;
  options.quiet = raw.quiet;
  switch (subcommand_named(options.mode_name)) {
  case Subcommand::status:
    return check_status(std::move(options), raw);
  case Subcommand::unlock:
    return check_unlock(sub, std::move(options), raw);
  case Subcommand::read:
    options.mode = LockMode::shared;
    break;
  case Subcommand::exclusive:
  case Subcommand::write:
    break;
  }
  take_descriptor(sub, raw, options);
  take_waiting_and_file_values(sub, raw, options);
  take_slots(sub, raw, options);
  take_also(raw, options);
  take_etcd_values(sub, raw, options);
  return options.fd ? check_lock_descriptor(sub, std::move(options), raw)
                    : check_run_command(sub, std::move(options), raw);
}

/// status has no COMMAND: the options after its LOCK are its own
/// (`fasten status L --json`). Anything else stays, for check() to refuse.
void take_options_after_lock(SplitArgs& split) {
  const auto is_option = [](const std::string& arg) {
    return arg.size() > 1 && arg[0] == '-' && arg != "--";
  };
  std::vector<std::string> options;
  std::copy_if(split.rest.begin(), split.rest.end(), std::back_inserter(options), is_option);
  std::erase_if(split.rest, is_option);
  // Before LOCK, which may follow a "--".
  split.options.insert(split.options.begin(), options.begin(), options.end());
}

/// flock(1)'s options that fasten spells the same, after the subcommand.
std::string_view fasten_option(std::string_view flock_option) {
  static const std::pair<std::string_view, std::string_view> k_same[] = {
      {"-n", "-n"},     {"--nb", "-n"},      {"--nonblock", "-n"}, {"-w", "-w"},
      {"--wait", "-w"}, {"--timeout", "-w"}, {"-E", "-E"},         {"--conflict-exit-code", "-E"},
      {"-o", "-o"},     {"--close", "-o"},   {"-F", "-F"},         {"--no-fork", "-F"},
      {"-v", "-v"},     {"--verbose", "-v"}, {"-c", "-c"},         {"--command", "-c"}};
  for (const auto& [flock, fasten] : k_same) {
    if (flock == flock_option) {
      return fasten;
    }
  }
  return {};
}

/// A flock(1) command line (`fasten -n L cmd`, `fasten -s L cmd`, `fasten
/// -u 9`) in fasten's form, with LOCK and COMMAND as placeholders: the mode
/// is a subcommand, and a descriptor is --fd N. std::nullopt when the words
/// are not flock(1)'s.
/// fasten's own arguments with short-option clusters spelt out as getopt
/// reads them: -xn is -x -n, and -w5 is -w 5.
std::vector<std::string> spelt_out(const std::vector<std::string>& args) {
  std::vector<std::string> words{args.front()};
  for (auto arg = args.begin() + 1; arg != args.end(); ++arg) {
    if (const auto equals = arg->find('='); arg->starts_with("--") && equals != std::string::npos) {
      words.push_back(arg->substr(0, equals));
      words.push_back(arg->substr(equals + 1));
      continue;
    }
    if (arg->size() < 3 || (*arg)[0] != '-' || (*arg)[1] == '-') {
      words.push_back(*arg);
      continue;
    }
    for (size_t c = 1; c < arg->size(); ++c) {
      words.push_back(std::string{'-', (*arg)[c]});
      if (std::string_view("wEc").find((*arg)[c]) != std::string_view::npos && c + 1 < arg->size()) {
        words.push_back(arg->substr(c + 1));
        break;
      }
    }
  }
  return words;
}

std::optional<std::string> fasten_form_of_flock(const std::vector<std::string>& given,
                                                std::string mode = "exclusive") {
  const std::vector<std::string> args = spelt_out(given);
  std::string options;
  size_t i = 1;
  for (; i < args.size() && args[i].size() > 1 && args[i][0] == '-'; ++i) {
    const std::string& name = args[i];
    if (name == "-x" || name == "-e" || name == "--exclusive") {
      mode = mode == "read" ? "exclusive" : mode; // write is exclusive too
    } else if (name == "-s" || name == "--shared") {
      mode = "read";
    } else if (name == "-u" || name == "--unlock") {
      mode = "unlock";
    } else if (const auto same = fasten_option(name); !same.empty()) {
      options += " " + std::string(same);
      const std::string_view value = same == "-w"   ? " SECONDS"
                                     : same == "-E" ? " N"
                                     : same == "-c" ? " STRING"
                                                    : "";
      if (!value.empty() && i + 1 < args.size()) {
        options += value;
        ++i;
      }
    } else {
      return std::nullopt;
    }
  }
  // As in flock(1), -n wins over -w, which fasten refuses with it.
  if (const auto timeout = options.find(" -w SECONDS");
      options.find(" -n") != std::string::npos && timeout != std::string::npos) {
    options.erase(timeout, std::string_view(" -w SECONDS").size());
  }
  const bool descriptor = i < args.size() && parse_descriptor(args[i]).has_value();
  if (mode == "unlock") {
    return "fasten unlock --fd " + (descriptor ? args[i] : std::string("N"));
  }
  const bool command_string = i + 1 < args.size() && (args[i + 1] == "-c" || args[i + 1] == "--command");
  const std::string rest = descriptor       ? " --fd " + args[i]
                           : command_string ? " LOCK -c STRING"
                                            : " LOCK COMMAND";
  return "fasten " + mode + options + rest;
}

/// The usage error of a command line without a subcommand.
std::string missing_subcommand(const std::vector<std::string>& args) {
  const bool named = args.size() > 1 && !args[1].starts_with('-');
  if (!named && args.size() > 1) {
    if (const auto form = fasten_form_of_flock(args)) {
      return "the lock mode is a subcommand in fasten, not an option as in flock(1): " + *form +
             " (see fasten --help)";
    }
  }
  return (named ? "unknown subcommand '" + args[1] + "'" : std::string("missing subcommand")) +
         ": expected exclusive, read, write, unlock or status (see fasten --help)";
}

/// flock(1)'s option `name`, which fasten does not take, after the
/// subcommand `mode`: why not, and the mode it asks for.
struct FlockOption {
  std::string reason;
  std::string mode;
};

std::optional<FlockOption> flock_only_option(std::string_view name, const std::string& mode) {
  const std::string a_subcommand = "; the lock mode is a subcommand in fasten";
  if (name == "-x" || name == "-e" || name == "--exclusive") {
    return mode == "read" ? FlockOption{a_subcommand, "exclusive"}
                          : FlockOption{", and fasten " + mode + " is already exclusive", mode};
  }
  if (name == "-s" || name == "--shared") {
    return mode == "read" ? FlockOption{", and fasten read is already shared", mode}
                          : FlockOption{a_subcommand, "read"};
  }
  if (name == "-u" || name == "--unlock") {
    return FlockOption{a_subcommand, "unlock"};
  }
  if (name == "--wait") {
    return FlockOption{"; fasten spells it -w or --timeout", mode};
  }
  if (name == "--nb") {
    return FlockOption{"; fasten spells it -n or --nonblock", mode};
  }
  return std::nullopt;
}

/// The usage error of flock(1)'s option `unknown` after a lock subcommand
/// (`fasten exclusive -x L cmd`), with the whole command line in fasten's
/// form; std::nullopt for an option that is not flock(1)'s.
std::optional<std::string> flock_option_after_subcommand(const std::vector<std::string>& args,
                                                         const std::string& unknown) {
  const std::string& mode = args[1];
  const auto option = flock_only_option(unknown, mode);
  if (mode == "unlock" || mode == "status" || !option) {
    return std::nullopt;
  }
  std::vector<std::string> without_subcommand{args.front()};
  without_subcommand.insert(without_subcommand.end(), args.begin() + 2, args.end());
  const std::string options_left_out = option->mode == "unlock"
                                           ? "fasten unlock --fd N"
                                           : "fasten " + option->mode + " [OPTIONS] LOCK COMMAND";
  return unknown + " is flock(1)'s option" + option->reason + ": " +
         fasten_form_of_flock(without_subcommand, mode).value_or(options_left_out) + " (see fasten --help)";
}

} // namespace

std::vector<LockRequest> named_locks(const LockOptions& options) {
  std::vector<LockRequest> locks{
      LockRequest{.path = options.lock_path, .mode_name = options.mode_name, .mode = options.mode}};
  locks.insert(locks.end(), options.also.begin(), options.also.end());
  return locks;
}

std::string lock_named_twice(const LockRequest& first, const LockRequest& second) {
  const std::string same = "the lock '" + escape_text(first.path) + "' is named twice" +
                           (first.path == second.path ? "" : " (also as '" + escape_text(second.path) + "')");
  if (first.mode != second.mode) {
    return same + ", for " + first.mode_name + " and for " + second.mode_name +
           ": a lock is held in one mode; name it once, for write if the command writes";
  }
  return same + ": name each lock once";
}

std::optional<std::chrono::nanoseconds> parse_seconds(std::string_view text) {
  // Plain decimal only: strtod alone would also take "nan", "inf", "0x10",
  // "1e400" and leading blanks.
  const auto dot = text.find('.');
  const auto digits = dot == std::string_view::npos ? text.size() : text.size() - 1;
  if (digits == 0 || !all_of(text, "0123456789.") ||
      (dot != std::string_view::npos && text.find('.', dot + 1) != std::string_view::npos)) {
    return std::nullopt;
  }
  const double seconds = std::strtod(std::string(text).c_str(), nullptr);
  if (!std::isfinite(seconds) || seconds > k_max_seconds) {
    return std::nullopt;
  }
  return std::chrono::nanoseconds(std::llround(seconds * 1e9));
}

void fill_unlock_subcommand(CLI::App* unlock, RawOptions& raw) {
  unlock->add_option("--fd", raw.fd, "the descriptor to unlock")->option_text("N")->required();
  unlock->add_flag("-v,--verbose", raw.verbose, "say on stderr what was unlocked");
}

void fill_status_subcommand(CLI::App* status, RawOptions& raw) {
  status->footer("Exit status: 0 free, 1 held, " +
                 status_meanings({exit_code::k_usage, exit_code::k_lock_failed, exit_code::k_no_input,
                                  exit_code::k_unavailable, exit_code::k_os_error, exit_code::k_io_error,
                                  exit_code::k_no_permission}) +
                 "128+N signal N. See fasten(1).");
  status->add_flag("--json", raw.json, "print the same as one JSON object");
  status->add_option("LOCK", raw.lock_path, "the lock file, or etcd://HOST:PORT[,HOST:PORT...]/NAME")
      ->required();
}

/// The subcommands, in --help's order: the line --help gives each, and what
/// adds its options.
struct SubcommandMaker {
  const char* name;
  const char* summary;
  void (*fill)(CLI::App* sub, RawOptions& raw);
};
constexpr std::array k_subcommands{
    SubcommandMaker{"exclusive", "hold an exclusive lock (a mutex) while COMMAND runs", fill_lock_subcommand},
    SubcommandMaker{"read", "hold a shared lock, together with other readers, while COMMAND runs",
                    fill_lock_subcommand},
    SubcommandMaker{"write", "hold the lock against readers and writers while COMMAND runs",
                    fill_lock_subcommand},
    SubcommandMaker{"unlock", "unlock the inherited descriptor N (fasten unlock --fd 9)",
                    fill_unlock_subcommand},
    SubcommandMaker{
        "status",
        "say whether LOCK is free, shared or exclusive, who holds it and how many wait; never takes it",
        fill_status_subcommand},
};

/// Adds the subcommand that the first argument names, and only that one:
/// building every subcommand's options is most of fasten's start-up
/// (BENCHMARKS.md). None for --version; for a lone --help, each by its line
/// alone, which is all that it shows of them; all of them in full for
/// anything else (--help SUBCOMMAND, a mistake), which shows or
/// names them.
void add_subcommands(CLI::App& app, RawOptions& raw, const std::vector<std::string>& args) {
  const std::string first = args.size() > 1 ? args[1] : std::string();
  for (const auto& maker : k_subcommands) {
    if (first == maker.name) {
      maker.fill(app.add_subcommand(maker.name, maker.summary), raw);
      return;
    }
  }
  if (first == "-V" || first == "--version") {
    return;
  }
  const bool lines_only = args.size() == 2 && (first == "-h" || first == "--help");
  for (const auto& maker : k_subcommands) {
    CLI::App* sub = app.add_subcommand(maker.name, maker.summary);
    if (!lines_only) {
      maker.fill(sub, raw);
    }
  }
}

namespace {

std::string version_text() {
  return std::string("fasten ") + FASTEN_VERSION;
}

/// The application with the subcommand that `args` names (add_subcommands).
void make_app(CLI::App& app, RawOptions& raw, const std::vector<std::string>& args) {
  // Options are -x and --xx everywhere: on Windows, CLI11 would also read
  // /x as one, and a rooted LOCK like /tmp/w.lock would be a usage error.
  // Set before the subcommands are added, which inherit it.
  app.allow_windows_style_options(false);
  app.set_version_flag("-V,--version", version_text());
  app.require_subcommand(1);
  app.footer("See fasten(1) for the exit statuses, signals and the lock protocol.");
  add_subcommands(app, raw, args);
}

/// A lone --version or --help, answered without a parse, where CLI11
/// answers it by throwing: the first exception a static program throws has
/// the unwinder sort every frame description first, some 11 million
/// instructions, twenty times the rest of fasten's start (BENCHMARKS.md).
std::optional<std::string> answer_without_parse(const CLI::App& app, const std::vector<std::string>& args) {
  if (args.size() == 2 && (args[1] == "-V" || args[1] == "--version")) {
    return version_text() + "\n";
  }
  if (args.size() == 2 && (args[1] == "-h" || args[1] == "--help")) {
    return app.help();
  }
  return std::nullopt;
}

/// The words for CLI11 to parse: the subcommand and its options up to
/// LOCK; what follows is the command's, untouched, in `raw.rest`.
std::vector<std::string> words_to_parse(const CLI::App& app, const std::vector<std::string>& args,
                                        RawOptions& raw) {
  // args[0] is the program name, args[1] should be the subcommand.
  std::vector<std::string> words(args.begin() + (args.empty() ? 0 : 1), args.end());
  if (args.size() > 1) {
    const auto named = app.get_subcommands([&](const CLI::App* sub) { return sub->get_name() == args[1]; });
    if (!named.empty()) {
      auto split = split_at_lock(*named.front(), {args.begin() + 2, args.end()});
      if (const auto hint = flock_option_after_subcommand(args, split.unknown)) {
        throw UsageError{*hint};
      }
      if (args[1] == "status") {
        take_options_after_lock(split);
      }
      words = {args[1]};
      words.insert(words.end(), split.options.begin(), split.options.end());
      raw.rest = std::move(split.rest);
    }
  }
  return words;
}

/// The seconds that environment variable `name` gives, decimal and greater
/// than 0 (`example` says what such a value looks like); std::nullopt when it
/// is not set, a usage error for anything else.
std::optional<std::chrono::nanoseconds> seconds_from_environment(const char* name, const char* example) {
  const char* text = std::getenv(name);
  if (text == nullptr) {
    return std::nullopt;
  }
  const auto seconds = parse_seconds(text);
  if (!seconds || seconds->count() <= 0) {
    throw UsageError{std::string(name) + ": expected seconds greater than 0, up to " + max_seconds_text() +
                     " (e.g. " + example + "), got '" + escape_text(text) + "'"};
  }
  return seconds;
}

/// What fasten reads from its environment.
void take_environment(LockOptions& options) {
  const char* endpoints = std::getenv("FASTEN_ETCD_ENDPOINTS");
  options.etcd_endpoints = endpoints != nullptr ? endpoints : "";
  options.verbose_interval =
      seconds_from_environment("FASTEN_VERBOSE_INTERVAL", "60 or 0.5").value_or(options.verbose_interval);
  options.etcd_recheck =
      seconds_from_environment("FASTEN_ETCD_RECHECK", "2 or 0.5").value_or(options.etcd_recheck);
}

/// `fasten exclusive|read|write LOCK [--] COMMAND...`, no option given: the
/// form most runs take, read without CLI11, whose building of a
/// subcommand's options and parse were most of fasten's start-up
/// (BENCHMARKS.md). Anything else (an option anywhere before COMMAND, a LOCK
/// that starts with '-', `LOCK -c STRING`, no COMMAND) is CLI11's, which
/// gives this form the same options (test-options.cc checks both ways).
std::optional<LockOptions> plain_run(const std::vector<std::string>& args) {
  if (args.size() < 4) {
    return std::nullopt;
  }
  const auto mode = mode_named(args[1]);
  const std::string& lock = args[2];
  if (!mode || lock.empty() || lock[0] == '-') {
    return std::nullopt;
  }
  const size_t first = args[3] == "--" ? 4 : 3;
  if (first == args.size() || (first == 3 && (args[3] == "-c" || args[3] == "--command"))) {
    return std::nullopt;
  }
  LockOptions options;
  options.mode_name = args[1];
  options.mode = *mode;
  options.lock_path = lock;
  options.command.assign(args.begin() + static_cast<std::ptrdiff_t>(first), args.end());
  return options;
}

/// The options that `args` give, checked.
LockOptions parse_and_check(CLI::App& app, const std::vector<std::string>& args, RawOptions& raw) {
  std::vector<std::string> words = words_to_parse(app, args, raw);
  // CLI11 wants them in reverse order.
  std::reverse(words.begin(), words.end());
  app.parse(words);
  LockOptions options = check(*app.get_subcommands().front(), std::move(raw));
  take_environment(options);
  return options;
}

/// The usage error of a word that subcommand `sub` does not take (CLI11's
/// ExtrasError): the first such word, an unknown option or a stray word.
std::optional<std::string> extra_word_text(const CLI::App& sub) {
  const auto extras = sub.remaining();
  if (extras.empty()) {
    return std::nullopt;
  }
  const std::string& word = extras.front();
  return (word.starts_with('-') ? "unknown option '" : "unexpected word '") + escape_text(word) +
         "' (see fasten " + sub.get_name() + " --help)";
}

/// The usage error of an option given too often, or without its value
/// (CLI11's ArgumentMismatch, whose text starts with the option's name).
std::optional<std::string> mismatch_text(const CLI::App& sub, const std::string& what) {
  const std::string name = what.substr(0, what.find(':'));
  const CLI::Option* option = sub.get_option_no_throw(name);
  if (option == nullptr) {
    return std::nullopt;
  }
  if (what.find(" required but received ") != std::string::npos) {
    return name + " is given more than once: give it once";
  }
  if (what.ends_with(" missing")) {
    const std::string& value = option->get_option_text();
    const std::string rest = sub.get_name() == "unlock" || name == "--fd" ? ""
                             : name == "--command"                        ? " LOCK"
                                                                          : " LOCK COMMAND";
    return name + " needs a value, " + value + ": fasten " + sub.get_name() + " " + name + " " + value + rest;
  }
  return std::nullopt;
}

/// The usage error of a command line that CLI11 could not parse.
std::string parse_error_text(const CLI::App& app, const CLI::ParseError& error,
                             const std::vector<std::string>& args) {
  if (app.get_subcommands().empty()) {
    return missing_subcommand(args);
  }
  const CLI::App& sub = *app.get_subcommands().front();
  std::optional<std::string> ours;
  if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr) {
    ours = extra_word_text(sub);
  } else if (dynamic_cast<const CLI::ArgumentMismatch*>(&error) != nullptr) {
    ours = mismatch_text(sub, error.what());
  }
  if (ours) {
    return *ours;
  }
  std::string text = error.what();
  if (args.size() == 3 && args[1] == "unlock") {
    text += descriptor_hint("unlock", args[2]);
  }
  return text;
}

/// Every command line but the plain form, through CLI11. Out of line: the
/// 11 kB that building the app inlines here would otherwise sit in
/// parse_command_line, amid the code of the plain form's start-up path
/// (src/programs/startup-path.ld), one 64 kB window more to fault in.
[[gnu::noinline]] ParsedCommandLine parse_with_cli11(const std::vector<std::string>& args) {
  CLI::App app("Run a command while holding an inter-process lock.", "fasten");
  RawOptions raw;
  make_app(app, raw, args);
  ParsedCommandLine parsed;
  if (auto answer = answer_without_parse(app, args)) {
    parsed.output = std::move(*answer);
    return parsed;
  }
  try {
    parsed.options = parse_and_check(app, args, raw);
  } catch (const CLI::CallForHelp&) {
    parsed.output = app.help();
  } catch (const CLI::CallForAllHelp&) {
    parsed.output = app.help("", CLI::AppFormatMode::All);
  } catch (const CLI::CallForVersion& version) {
    parsed.output = std::string(version.what()) + "\n";
  } catch (const CLI::ParseError& error) {
    parsed.exit_status = exit_code::k_usage;
    parsed.error = parse_error_text(app, error, args);
  } catch (const UsageError& error) {
    parsed.exit_status = exit_code::k_usage;
    parsed.error = error.message;
  }
  return parsed;
}

} // namespace

ParsedCommandLine parse_command_line(const std::vector<std::string>& args) {
  auto plain = plain_run(args);
  if (!plain) {
    return parse_with_cli11(args);
  }
  ParsedCommandLine parsed;
  try {
    take_environment(*plain);
    parsed.options = std::move(plain);
  } catch (const UsageError& error) {
    parsed.exit_status = exit_code::k_usage;
    parsed.error = error.message;
  }
  return parsed;
}

std::string option_value_text(const std::string& option) {
  RawOptions raw;
  CLI::App app;
  fill_lock_subcommand(&app, raw);
  const CLI::Option* found = app.get_option_no_throw(option);
  return found == nullptr || found->get_items_expected_max() == 0 ? std::string() : found->get_option_text();
}

} // namespace fasten::cli
