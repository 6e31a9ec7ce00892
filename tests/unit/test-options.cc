#include <doctest/doctest.h>

#include <cstdlib>

#include "cli/exit-meanings.h"
#include "cli/options.h"
#include "lock/status.h"
#include "run/exit-codes.h"
#include "run/spawn.h"

using namespace fasten;
using namespace fasten::cli;
using namespace std::chrono_literals;
using Args = std::vector<std::string>;

namespace {

ParsedCommandLine parse(Args args) {
  args.insert(args.begin(), "fasten");
  return parse_command_line(args);
}

LockOptions parse_ok(const Args& args) {
  auto parsed = parse(args);
  REQUIRE_MESSAGE(parsed.options.has_value(), parsed.error);
  return *parsed.options;
}

void check_usage_error(const Args& args, const std::string& named) {
  auto parsed = parse(args);
  CHECK_FALSE(parsed.options.has_value());
  CHECK(parsed.exit_status == 64);
  CHECK_MESSAGE(parsed.error.find(named) != std::string::npos, parsed.error);
  CHECK(parsed.error.find('\n') == std::string::npos);
}

} // namespace

TEST_CASE("everything after LOCK passes to COMMAND untouched, options included") {
  CHECK(parse_ok({"write", "L", "--", "cmd", "-n", "-w", "3"}).command == Args{"cmd", "-n", "-w", "3"});
  CHECK(parse_ok({"write", "L", "cmd", "-n", "-w", "3"}).command == Args{"cmd", "-n", "-w", "3"});
  CHECK(parse_ok({"read", "L", "cmd", "--", "x"}).command == Args{"cmd", "--", "x"});
  CHECK(parse_ok({"read", "L", "--", "-c", "x"}).command == Args{"-c", "x"});
  const auto options = parse_ok({"exclusive", "-n", "L", "cmd", "-v"});
  CHECK(options.command == Args{"cmd", "-v"});
  CHECK_FALSE(options.verbose);
}

TEST_CASE("LOCK [--] COMMAND with no option gives the options that the same line with options does") {
  // The plain form is read without CLI11; `--` before LOCK sends the same
  // line through CLI11's parse.
  for (const std::string mode : {"exclusive", "read", "write"}) {
    for (const std::string lock : {"L", "/tmp/w.lock", "a=b", "exclusive", "status", "unlock", "@x", "x y",
                                   "[a,b]", "etcd://h:1/n", "\xc3\xa9", "+x", "."}) {
      for (const Args& command : {Args{"true"}, Args{"--", "true"}, Args{"cmd", "-n", "-w", "3"},
                                  Args{"--", "-c", "x"}, Args{"cmd", "--", "x"}, Args{"--", "--"}}) {
        Args plain{mode, lock};
        plain.insert(plain.end(), command.begin(), command.end());
        Args through_cli11{mode, "--", lock};
        through_cli11.insert(through_cli11.end(), command.begin(), command.end());
        CAPTURE(plain);
        CHECK(parse_ok(plain) == parse_ok(through_cli11));
      }
    }
  }
  const auto options = parse_ok({"read", "L", "--", "cmd", "x"});
  CHECK(options.mode == LockMode::shared);
  CHECK(options.mode_name == "read");
  CHECK(options.lock_path == "L");
  CHECK(options.command == Args{"cmd", "x"});
  CHECK(options.action == LockOptions::Action::run_command);
}

TEST_CASE("the plain form's look-alikes are CLI11's: -c after LOCK, a LOCK like an option, no COMMAND") {
  CHECK(parse_ok({"write", "L", "-c", "echo a"}).command == run::shell_command("echo a"));
  CHECK(parse_ok({"write", "L", "--command", "echo a"}).command == run::shell_command("echo a"));
  check_usage_error({"write", "L", "--"}, "missing COMMAND");
  check_usage_error({"write", "", "true"}, "the path is empty");
  check_usage_error({"write", "-x", "true"}, "-x");
}

TEST_CASE("the command's words reach it as written, brackets and commas included") {
  CHECK(parse_ok({"write", "L", "[", "-e", "x", "]"}).command == Args{"[", "-e", "x", "]"});
  CHECK(parse_ok({"write", "L", "echo", "[a,b]", "{c}"}).command == Args{"echo", "[a,b]", "{c}"});
  CHECK(parse_ok({"write", "L", "sh", "-c", "[ -e x ]"}).command == Args{"sh", "-c", "[ -e x ]"});
}

TEST_CASE("clustered short options are read as getopt reads them") {
  auto options = parse_ok({"write", "-nv", "L", "true"});
  CHECK(options.timeout == Timeout(0ns));
  CHECK(options.verbose);
  options = parse_ok({"write", "-vw", "5", "L", "true"});
  CHECK(options.timeout == Timeout(5s));
  CHECK(options.verbose);
  CHECK(options.lock_path == "L");
  options = parse_ok({"write", "-vw5", "L", "true"});
  CHECK(options.timeout == Timeout(5s));
  CHECK(options.command == Args{"true"});
  options = parse_ok({"write", "-E3", "--", "L", "--", "true"});
  CHECK(options.conflict_exit_code == 3);
  CHECK(options.lock_path == "L");
  CHECK(options.command == Args{"true"});
}

TEST_CASE("the subcommand picks the lock mode") {
  CHECK(parse_ok({"exclusive", "L", "true"}).mode == LockMode::exclusive);
  CHECK(parse_ok({"write", "L", "true"}).mode == LockMode::exclusive);
  CHECK(parse_ok({"read", "L", "true"}).mode == LockMode::shared);
  CHECK(parse_ok({"read", "L", "true"}).mode_name == "read");
}

TEST_CASE("-c STRING runs through the system's shell, after LOCK or before it") {
  CHECK(parse_ok({"write", "L", "-c", "echo a | wc"}).command == run::shell_command("echo a | wc"));
  CHECK(parse_ok({"write", "-c", "echo a", "L"}).command == run::shell_command("echo a"));
  CHECK(parse_ok({"write", "--command", "x", "L"}).command == run::shell_command("x"));
  CHECK(run::shell_command("x").back() == "x");
  check_usage_error({"write", "L", "-c", "echo", "extra"}, "-c");
  check_usage_error({"write", "-c", "echo", "L", "extra"}, "extra");
  check_usage_error({"write", "L", "-c"}, "-c");
}

TEST_CASE("options take their values") {
  const auto options = parse_ok({"read", "-w", "0.25", "-E", "3", "-o", "--no-create", "-v", "L", "true"});
  CHECK(options.timeout == Timeout(250ms));
  CHECK(options.conflict_exit_code == 3);
  CHECK(options.close_fd);
  CHECK(options.no_create);
  CHECK(options.verbose);
  CHECK(options.lock_path == "L");

  const auto defaults = parse_ok({"read", "L", "true"});
  CHECK(defaults.timeout == wait_forever);
  CHECK(defaults.conflict_exit_code == 75);
  CHECK_FALSE(defaults.close_fd);
  CHECK_FALSE(defaults.no_fork);
  CHECK_FALSE(defaults.create_mode);

  CHECK(parse_ok({"read", "-n", "L", "true"}).timeout == Timeout(0ns));
  CHECK(parse_ok({"read", "--timeout=2", "L", "true"}).timeout == Timeout(2s));
  CHECK(parse_ok({"read", "-E", "0", "L", "true"}).conflict_exit_code == 0);
}

TEST_CASE("--mode and -F take effect where the system has them, and are usage errors elsewhere") {
  if (files_have_permission_bits()) {
    CHECK(parse_ok({"read", "--mode", "0640", "L", "true"}).create_mode == std::optional<unsigned>(0640));
    // Leading zeros, as chmod(1) takes them.
    CHECK(parse_ok({"read", "--mode", "00640", "L", "true"}).create_mode == std::optional<unsigned>(0640));
    CHECK(parse_ok({"read", "--mode", "000", "L", "true"}).create_mode == std::optional<unsigned>(0));
  } else {
    check_usage_error({"read", "--mode", "0640", "L", "true"}, "--mode");
  }
  if (run::can_exec_in_place()) {
    CHECK(parse_ok({"read", "-F", "L", "true"}).no_fork);
  } else {
    check_usage_error({"read", "-F", "L", "true"}, "-F");
  }
}

TEST_CASE("status is a usage error where the system cannot see a lock without taking it") {
  if (status_supported()) {
    CHECK(parse_ok({"status", "L"}).action == LockOptions::Action::show_status);
  } else {
    check_usage_error({"status", "L"}, "status");
  }
}

TEST_CASE("timeouts are plain decimal seconds") {
  CHECK(parse_seconds("0") == std::optional(0ns));
  CHECK(parse_seconds("0.25") == std::optional(std::chrono::nanoseconds(250ms)));
  CHECK(parse_seconds(".5") == std::optional(std::chrono::nanoseconds(500ms)));
  CHECK(parse_seconds("5.") == std::optional(std::chrono::nanoseconds(5s)));
  CHECK(parse_seconds("600") == std::optional(std::chrono::nanoseconds(600s)));
  for (const char* bad : {"", "abc", "-1", "nan", "inf", "1e400", "1e3", " 1", "1 ", "0x10", ".", "1.2.3",
                          "+1", "99999999999"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_seconds(bad).has_value());
  }
}

TEST_CASE("bad values are usage errors that name the value") {
  for (const char* bad : {"abc", "-1", "nan", "inf", "1e400", ""}) {
    check_usage_error({"write", "-w", bad, "L", "true"}, std::string("'") + bad + "'");
  }
  check_usage_error({"write", "-E", "256", "L", "true"}, "256");
  check_usage_error({"write", "-E", "-1", "L", "true"}, "-1");
  check_usage_error({"write", "--mode", "0999", "L", "true"}, "0999");
  check_usage_error({"write", "--mode", "4755", "L", "true"}, "4755");
}

// setenv is POSIX, and the Windows build has no etcd locks (fasten-etcd).
#ifndef _WIN32
TEST_CASE("FASTEN_ETCD_RECHECK gives an etcd waiter's re-check, in either form of the command line") {
  CHECK(parse_ok({"exclusive", "etcd://h:1/x", "true"}).etcd_recheck == k_default_etcd_recheck);
  setenv("FASTEN_ETCD_RECHECK", "0.5", 1);
  CHECK(parse_ok({"exclusive", "etcd://h:1/x", "true"}).etcd_recheck == 500ms);
  CHECK(parse_ok({"exclusive", "-w", "9", "etcd://h:1/x", "true"}).etcd_recheck == 500ms);
  setenv("FASTEN_ETCD_RECHECK", "600", 1);
  CHECK(parse_ok({"read", "etcd://h:1/x", "--", "true"}).etcd_recheck == 600s);
  for (const char* bad : {"0", "0.0", "abc", "-1", "", "99999999999"}) {
    setenv("FASTEN_ETCD_RECHECK", bad, 1);
    check_usage_error(
        {"exclusive", "etcd://h:1/x", "true"},
        std::string("FASTEN_ETCD_RECHECK: expected seconds greater than 0, up to 1000000000 (e.g. 2 "
                    "or 0.5), got '") +
            bad + "'");
    check_usage_error({"exclusive", "-w", "9", "etcd://h:1/x", "true"}, "FASTEN_ETCD_RECHECK");
  }
  unsetenv("FASTEN_ETCD_RECHECK");
}
#endif

TEST_CASE("usage errors: -F with -o, no COMMAND, no LOCK, unknown options and subcommands") {
  check_usage_error({"write", "-F", "-o", "L", "true"}, "-o");
  check_usage_error({"write", "L"}, "COMMAND");
  check_usage_error({"write", "L", "--"}, "COMMAND");
  check_usage_error({"write"}, "LOCK");
  check_usage_error({"write", "--bogus", "L", "true"}, "--bogus");
  check_usage_error({"frobnicate", "L", "true"}, "frobnicate");
  check_usage_error({}, "subcommand");
}

TEST_CASE("flock(1)'s options in place of a subcommand get fasten's form as a hint") {
  check_usage_error({"-n", "L", "cmd"}, "fasten exclusive -n LOCK COMMAND");
  check_usage_error({"-x", "L", "cmd"}, "fasten exclusive LOCK COMMAND");
  check_usage_error({"-s", "-w", "5", "L", "cmd"}, "fasten read -w SECONDS LOCK COMMAND");
  check_usage_error({"-xn", "9"}, "fasten exclusive -n --fd 9");
  check_usage_error({"-snw5", "L", "cmd"}, "fasten read -n LOCK COMMAND");
  check_usage_error({"--shared", "L", "-c", "echo hi"}, "fasten read LOCK -c STRING");
  check_usage_error({"-u", "9"}, "fasten unlock --fd 9");
  check_usage_error({"-n", "L", "cmd"}, "subcommand");
  // Not flock(1)'s: the plain message.
  check_usage_error({"-Z", "L", "cmd"}, "missing subcommand");
}

TEST_CASE("a timeout beyond the largest one names the largest") {
  check_usage_error({"write", "-w", "99999999999", "L", "true"}, "up to 1000000000");
  CHECK(parse_ok({"write", "-w", "1000000000", "L", "true"}).timeout == Timeout(1000000000s));
}

TEST_CASE("--help's footers give the exit statuses of the one list") {
  const auto help = parse({"exclusive", "--help"}).output;
  for (const auto& [status, meaning] : k_statuses) {
    CHECK_MESSAGE(help.find(std::to_string(status) + " " + std::string(meaning)) != std::string::npos,
                  status);
  }
  const auto status_help = parse({"status", "--help"}).output;
  for (const char* expected : {"0 free", "1 held", "66 ", "69 ", "71 ", "74 "}) {
    CHECK_MESSAGE(status_help.find(expected) != std::string::npos, expected);
  }
  CHECK(parse({"read", "--help"}).output.find("exec 8</run/x.lock; fasten read --fd 8") != std::string::npos);
  CHECK(status_help.find("HOST:PORT[,HOST:PORT...]") != std::string::npos);
}

TEST_CASE("--help and --version print to stdout and exit 0") {
  auto help = parse({"--help"});
  CHECK(help.exit_status == 0);
  CHECK(help.output.find("exclusive") != std::string::npos);
  auto sub_help = parse({"write", "--help"});
  CHECK(sub_help.exit_status == 0);
  CHECK(sub_help.output.find("--timeout") != std::string::npos);
  auto version = parse({"--version"});
  CHECK(version.exit_status == 0);
  CHECK(version.output.rfind("fasten ", 0) == 0);
}

TEST_CASE(
    "--help lists every subcommand by its line, and --help with a subcommand shows that one's options") {
  const auto help = parse({"--help"}).output;
  for (const char* line : {"exclusive", "hold an exclusive lock (a mutex) while COMMAND runs", "read",
                           "hold a shared lock, together with other readers", "write", "unlock",
                           "unlock the inherited descriptor N", "status", "say whether LOCK is free"}) {
    CHECK_MESSAGE(help.find(line) != std::string::npos, line);
  }
  CHECK(parse({"-h"}).output == help);
  // Built only to list them: the lone --help shows none of their options,
  // --help before a subcommand shows that subcommand's.
  CHECK(help.find("--timeout") == std::string::npos);
  CHECK(parse({"--help", "exclusive"}).output.find("--timeout") != std::string::npos);
}

TEST_CASE("--fd locks a descriptor instead of a path, and unlock --fd undoes it") {
  if (!run::has_inherited_descriptors()) {
    check_usage_error({"exclusive", "-n", "--fd", "9"}, "--fd");
    check_usage_error({"unlock", "--fd", "9"}, "--fd");
    return;
  }
  if (!locks_belong_to_open_files()) {
    // Classic fcntl locks end with the process that took them.
    check_usage_error({"exclusive", "-n", "--fd", "9"}, "open-file-description");
    return;
  }
  auto options = parse_ok({"exclusive", "-n", "--fd", "9"});
  CHECK(options.action == LockOptions::Action::lock_descriptor);
  CHECK(options.fd == std::optional<int>(9));
  CHECK(options.timeout == Timeout(0ns));
  options = parse_ok({"unlock", "--fd", "9"});
  CHECK(options.action == LockOptions::Action::unlock_descriptor);
  CHECK(options.fd == std::optional<int>(9));
  CHECK(parse_ok({"read", "L", "true"}).action == LockOptions::Action::run_command);

  check_usage_error({"exclusive", "--fd", "9", "L"}, "'L'");
  check_usage_error({"exclusive", "--fd", "9", "-c", "true"}, "--command");
  // fasten never opens the file: --mode and --no-create have nothing to act on.
  check_usage_error({"exclusive", "--fd", "9", "--mode", "600"}, "neither opens nor creates");
  check_usage_error({"exclusive", "--fd", "9", "--no-create"}, "neither opens nor creates");
  check_usage_error({"exclusive", "--fd", "nine"}, "'nine'");
  check_usage_error({"unlock"}, "--fd");
}

TEST_CASE("a LOCK that starts with a dash can follow --") {
  const auto options = parse_ok({"write", "--", "-odd", "true"});
  CHECK(options.lock_path == "-odd");
  CHECK(options.command == Args{"true"});
}

TEST_CASE("a LOCK that begins with a slash is a LOCK on every platform, not a Windows-style option") {
  auto options = parse_ok({"exclusive", "/tmp/w.lock", "--", "cmd", "/c", "exit 3"});
  CHECK(options.lock_path == "/tmp/w.lock");
  CHECK(options.command == Args{"cmd", "/c", "exit 3"});
  options = parse_ok({"write", "-w", "1", "/w", "cmd"});
  CHECK(options.lock_path == "/w");
  CHECK(options.timeout == Timeout(1s));
}

TEST_CASE("status takes one LOCK and --json") {
  if (!status_supported()) {
    check_usage_error({"status", "L"}, "not available");
    return;
  }
  auto options = parse_ok({"status", "--json", "L"});
  CHECK(options.action == LockOptions::Action::show_status);
  CHECK(options.json);
  CHECK(options.lock_path == "L");
  CHECK_FALSE(parse_ok({"status", "L"}).json);
  // status has no COMMAND, so an option after LOCK is its own.
  options = parse_ok({"status", "L", "--json"});
  CHECK(options.json);
  CHECK(options.lock_path == "L");
  CHECK(parse_ok({"status", "--", "-odd", "--json"}).lock_path == "-odd");
  check_usage_error({"status", "L", "extra"}, "'extra'");
  check_usage_error({"status", "L", "--bogus"}, "--bogus");
  check_usage_error({"status"}, "LOCK");
}

TEST_CASE("an etcd LOCK takes --ttl and --grace, and refuses -F and --fd") {
  const auto options = parse_ok({"write", "--ttl", "3", "--grace", "0.5", "etcd://h:1/jobs", "cmd"});
  CHECK(options.lock_path == "etcd://h:1/jobs");
  CHECK(options.ttl == 3s);
  CHECK(options.grace == 500ms);
  CHECK(options.command == Args{"cmd"});
  CHECK(parse_ok({"read", "etcd://h:1/jobs", "cmd"}).ttl == k_default_ttl);
  check_usage_error({"exclusive", "-F", "etcd://h:1/x", "cmd"}, "-F");
  check_usage_error({"exclusive", "--fd", "9", "etcd://h:1/x"}, "--fd");
  check_usage_error({"exclusive", "--ttl", "0", "etcd://h:1/x", "cmd"}, "bad TTL: '0'");
  check_usage_error({"exclusive", "--ttl", "1.5", "etcd://h:1/x", "cmd"}, "bad TTL");
  check_usage_error({"exclusive", "--grace", "-1", "etcd://h:1/x", "cmd"}, "bad grace period");
  check_usage_error({"exclusive", "--ttl", "5", "file", "cmd"}, "--ttl applies to etcd locks only");
  // The URL itself is fasten-etcd's to read (tests/integration/etcd.sh).
}

namespace {

/// A command line and the whole usage error it must give, word for word.
struct ExpectedError {
  Args args;
  std::string message;
};

void check_exact_usage_errors(const std::vector<ExpectedError>& expected) {
  for (const auto& [args, message] : expected) {
    const auto parsed = parse(args);
    CAPTURE(args);
    CHECK_FALSE(parsed.options.has_value());
    CHECK(parsed.exit_status == exit_code::k_usage);
    CHECK(parsed.error == message);
  }
}

} // namespace

TEST_CASE("the usage errors of values read word for word as the manual and scripts know them") {
  check_exact_usage_errors({
      {{"exclusive", "-w", "abc", "L", "true"},
       "bad timeout: 'abc' (expected seconds up to 1000000000, e.g. 0.25)"},
      {{"exclusive", "-E", "256", "L", "true"}, "bad conflict exit code: '256' (expected 0-255)"},
      {{"exclusive", "--ttl", "0", "etcd://h:1/x", "true"},
       "bad TTL: '0' (expected whole seconds from 1 to 86400)"},
      {{"exclusive", "--grace", "-1", "etcd://h:1/x", "true"},
       "bad grace period: '-1' (expected seconds up to 1000000000, e.g. 2.5)"},
      {{"exclusive", "--ttl", "3", "file", "true"},
       "--ttl applies to etcd locks only, not to the lock file 'file'"},
      {{"exclusive", "--grace", "3", "file", "true"},
       "--grace applies to etcd locks only, not to the lock file 'file'"},
      {{"exclusive"}, "missing LOCK (a path, an etcd://HOST:PORT/NAME URL, or --fd N)"},
      {{"exclusive", "--", "", "true"}, "bad LOCK: the path is empty"},
      {{"exclusive", "L"}, "missing COMMAND after LOCK 'L'"},
      {{"exclusive", "L", "-c"}, "-c takes exactly one STRING, the whole command"},
      {{"exclusive", "-c", "x", "L", "-c", "y"}, "-c takes exactly one STRING, the whole command"},
      {{"exclusive", "-c", "x", "L", "extra"},
       "-c takes exactly one STRING, the whole command; unexpected: 'extra'"},
  });
  if (files_have_permission_bits()) {
    check_exact_usage_errors({
        {{"exclusive", "--mode", "0999", "L", "true"},
         "bad mode: '0999' (expected octal permissions 0-0777, e.g. 0644)"},
    });
  }
  if (run::can_exec_in_place()) {
    check_exact_usage_errors({
        {{"exclusive", "-F", "etcd://h:1/x", "true"},
         "-F (--no-fork) cannot hold an etcd lock: fasten must stay to renew its lease"},
        {{"exclusive", "-F", "-o", "L", "true"},
         "-F (--no-fork) and -o (--close) cannot go together: with -F the command itself holds the lock's "
         "descriptor"},
    });
  }
}

TEST_CASE("the first of several usage errors is the one reported, values before combinations") {
  check_exact_usage_errors({
      {{"exclusive", "-E", "256", "-w", "abc", "L", "true"},
       "bad timeout: 'abc' (expected seconds up to 1000000000, e.g. 0.25)"},
      {{"exclusive", "-n", "-w", "abc", "L", "true"},
       "bad timeout: 'abc' (expected seconds up to 1000000000, e.g. 0.25)"},
      {{"exclusive", "--ttl", "0", "-E", "256", "etcd://h:1/x", "true"},
       "bad conflict exit code: '256' (expected 0-255)"},
      {{"exclusive", "--grace", "x", "--ttl", "0", "etcd://h:1/x", "true"},
       "bad TTL: '0' (expected whole seconds from 1 to 86400)"},
      {{"exclusive", "--grace", "x", "file", "true"},
       "bad grace period: 'x' (expected seconds up to 1000000000, e.g. 2.5)"},
      {{"exclusive", "--grace", "3", "--ttl", "3", "file", "true"},
       "--ttl applies to etcd locks only, not to the lock file 'file'"},
  });
  if (run::can_exec_in_place()) {
    check_exact_usage_errors({
        {{"exclusive", "-F", "-o", "--ttl", "0", "etcd://h:1/x", "true"},
         "-F (--no-fork) cannot hold an etcd lock: fasten must stay to renew its lease"},
        {{"exclusive", "-F", "-o", "--ttl", "3", "file", "true"},
         "--ttl applies to etcd locks only, not to the lock file 'file'"},
    });
  }
}

TEST_CASE("the usage errors of --fd and unlock read word for word") {
  check_exact_usage_errors({
      {{"exclusive", "--fd", "nine"}, "bad descriptor: 'nine' (expected a number, e.g. 9)"},
      {{"unlock", "--fd", "nine"}, "bad descriptor: 'nine' (expected a number, e.g. 9)"},
      {{"unlock"}, "--fd is required"},
  });
  if (!run::has_inherited_descriptors() || !locks_belong_to_open_files()) {
    return;
  }
  check_exact_usage_errors({
      {{"exclusive", "--fd", "9", "-c", "x"},
       "--fd and --command cannot go together: with --fd there is no command"},
      {{"exclusive", "--fd", "9", "-o"},
       "--fd and --close cannot go together: with --fd there is no command"},
      {{"exclusive", "--fd", "9", "-F"},
       "--fd and --no-fork cannot go together: with --fd there is no command"},
      {{"exclusive", "--fd", "9", "--mode", "600"},
       "--fd and --mode cannot go together: with --fd fasten neither opens nor creates a file"},
      {{"exclusive", "--fd", "9", "--no-create"},
       "--fd and --no-create cannot go together: with --fd fasten neither opens nor creates a file"},
      {{"exclusive", "--fd", "9", "etcd://h:1/x"},
       "--fd cannot take an etcd lock ('etcd://h:1/x'): there is no descriptor to leave it with"},
      {{"exclusive", "--fd", "9", "--ttl", "3"},
       "--fd and --ttl cannot go together: they apply to etcd locks"},
      {{"exclusive", "--fd", "9", "--grace", "3"},
       "--fd and --grace cannot go together: they apply to etcd locks"},
      {{"exclusive", "--fd", "9", "L"}, "--fd takes no LOCK and no COMMAND; unexpected: 'L'"},
      {{"exclusive", "--fd", "9", "--", "", "x"}, "--fd takes no LOCK and no COMMAND; unexpected: 'x'"},
  });
  // Several at once: the first in the order above.
  check_exact_usage_errors({
      {{"exclusive", "--fd", "nine", "-w", "abc"}, "bad descriptor: 'nine' (expected a number, e.g. 9)"},
      {{"exclusive", "--fd", "9", "-c", "x", "--mode", "600", "--ttl", "3", "L"},
       "--ttl applies to etcd locks only, not to the lock file 'L'"},
      {{"exclusive", "--fd", "9", "-c", "x", "--mode", "600", "--ttl", "3"},
       "--fd and --command cannot go together: with --fd there is no command"},
      {{"exclusive", "--fd", "9", "--no-create", "--ttl", "3"},
       "--fd and --no-create cannot go together: with --fd fasten neither opens nor creates a file"},
      {{"exclusive", "--fd", "9", "--ttl", "3", "etcd://h:1/x"},
       "--fd cannot take an etcd lock ('etcd://h:1/x'): there is no descriptor to leave it with"},
      // The LOCK before the options that --fd refuses: an etcd LOCK is the bigger mistake.
      {{"exclusive", "--fd", "9", "-c", "x", "etcd://h:1/x"},
       "--fd cannot take an etcd lock ('etcd://h:1/x'): there is no descriptor to leave it with"},
      {{"exclusive", "--fd", "9", "--ttl", "3", "--", "", "x"},
       "--fd and --ttl cannot go together: they apply to etcd locks"},
  });
  // CLI11 reads --close=false: a flag set to false asks for nothing, and so
  // conflicts with nothing.
  CHECK(parse_ok({"exclusive", "--fd", "9", "--close=false", "--no-create=false"}).fd ==
        std::optional<int>(9));
  if (run::can_exec_in_place()) {
    CHECK(parse_ok({"exclusive", "--no-fork=false", "-o", "L", "true"}).close_fd);
    check_exact_usage_errors({
        {{"exclusive", "--fd", "9", "-F", "-o"},
         "-F (--no-fork) and -o (--close) cannot go together: with -F the command itself holds the lock's "
         "descriptor"},
    });
  }
}

TEST_CASE("the usage errors of status read word for word") {
  if (!status_supported()) {
    return;
  }
  check_exact_usage_errors({
      {{"status", "L", "extra"}, "status takes one LOCK; unexpected: 'extra'"},
      {{"status", "etcd://h:1/x", "extra"}, "status takes one LOCK; unexpected: 'extra'"},
      {{"status", ""}, "bad LOCK: the path is empty"},
      {{"status", "--json", "--", ""}, "bad LOCK: the path is empty"},
  });
}

TEST_CASE("a number alone where LOCK goes, flock(1)'s descriptor, gets --fd as a hint") {
  // With a command, a file named 9 is a fine lock.
  CHECK(parse_ok({"exclusive", "9", "true"}).lock_path == "9");
  check_exact_usage_errors({
      {{"exclusive", "9x"}, "missing COMMAND after LOCK '9x'"},
      {{"unlock", "nine"}, "--fd is required"},
  });
  if (!run::has_inherited_descriptors() || !locks_belong_to_open_files()) {
    return;
  }
  check_exact_usage_errors({
      {{"exclusive", "9"},
       "missing COMMAND after LOCK '9'; to lock the open descriptor 9, as flock 9 does, use --fd 9"},
      {{"read", "-n", "8"},
       "missing COMMAND after LOCK '8'; to lock the open descriptor 8, as flock 8 does, use --fd 8"},
      {{"unlock", "9"}, "--fd is required; to unlock the open descriptor 9, as flock -u 9 does, use --fd 9"},
  });
}

TEST_CASE("flock(1)'s options after a subcommand get fasten's form as a hint") {
  const std::string see = " (see fasten --help)";
  check_exact_usage_errors({
      {{"exclusive", "-x", "L", "cmd"},
       "-x is flock(1)'s option, and fasten exclusive is already exclusive: fasten exclusive LOCK COMMAND" +
           see},
      {{"write", "-xn", "L", "cmd"},
       "-x is flock(1)'s option, and fasten write is already exclusive: fasten write -n LOCK COMMAND" + see},
      {{"read", "-e", "L", "cmd"},
       "-e is flock(1)'s option; the lock mode is a subcommand in fasten: fasten exclusive LOCK COMMAND" +
           see},
      {{"exclusive", "-s", "-w", "5", "L", "cmd"},
       "-s is flock(1)'s option; the lock mode is a subcommand in fasten: fasten read -w SECONDS LOCK "
       "COMMAND" +
           see},
      {{"read", "--shared", "L", "-c", "x"},
       "--shared is flock(1)'s option, and fasten read is already shared: fasten read LOCK -c STRING" + see},
      {{"exclusive", "-u", "9"},
       "-u is flock(1)'s option; the lock mode is a subcommand in fasten: fasten unlock --fd 9" + see},
      {{"exclusive", "--wait", "5", "L", "cmd"},
       "--wait is flock(1)'s option; fasten spells it -w or --timeout: fasten exclusive -w SECONDS LOCK "
       "COMMAND" +
           see},
      {{"read", "--wait=5", "L", "cmd"},
       "--wait is flock(1)'s option; fasten spells it -w or --timeout: fasten read -w SECONDS LOCK COMMAND" +
           see},
      {{"exclusive", "--nb", "L", "cmd"},
       "--nb is flock(1)'s option; fasten spells it -n or --nonblock: fasten exclusive -n LOCK COMMAND" +
           see},
      // With an option of fasten's own, the form leaves the options out.
      {{"exclusive", "-q", "-x", "L", "cmd"},
       "-x is flock(1)'s option, and fasten exclusive is already exclusive: fasten exclusive [OPTIONS] LOCK "
       "COMMAND" +
           see},
      // A value that looks like one is a value; after LOCK, the command's.
      {{"exclusive", "-c", "-x"}, "missing LOCK (a path, an etcd://HOST:PORT/NAME URL, or --fd N)"},
  });
  CHECK(parse_ok({"exclusive", "L", "cmd", "-x"}).command == Args{"cmd", "-x"});
}

TEST_CASE("one timeout: -n and -w together, or either twice, are one usage error") {
  const std::string one_timeout = "more than one timeout (-n is -w 0): give -n or -w SECONDS, once";
  check_exact_usage_errors({
      {{"exclusive", "-n", "-w", "5", "L", "true"}, one_timeout},
      {{"write", "-nw5", "L", "true"}, one_timeout},
      {{"read", "--timeout", "1", "--nonblock", "L", "true"}, one_timeout},
      {{"exclusive", "-w", "5", "-w", "1", "L", "true"}, one_timeout},
      {{"exclusive", "-n", "-n", "L", "true"}, one_timeout},
      // A bad value is named first.
      {{"exclusive", "-w", "5", "-w", "abc", "L", "true"},
       "bad timeout: 'abc' (expected seconds up to 1000000000, e.g. 0.25)"},
      // flock(1)'s -n -w: -n wins there, and the hint says only -n.
      {{"-nw5", "L", "cmd"},
       "the lock mode is a subcommand in fasten, not an option as in flock(1): fasten exclusive -n LOCK "
       "COMMAND (see fasten --help)"},
  });
  CHECK(parse_ok({"exclusive", "-n", "L", "true"}).timeout == Timeout(0ns));
  CHECK(parse_ok({"exclusive", "-w", "2", "L", "true"}).timeout == Timeout(2s));
}

TEST_CASE("--also MODE LOCK adds locks in the order given, each in its own mode, before LOCK") {
  const auto options = parse_ok({"write", "--also", "read", "/var/db.lock", "--also=exclusive",
                                 "etcd:///jobs", "-n", "/srv/target.lock", "make", "--also", "x"});
  CHECK(options.lock_path == "/srv/target.lock");
  CHECK(options.mode_name == "write");
  CHECK(options.timeout == 0ns);
  CHECK(options.command == Args{"make", "--also", "x"});
  CHECK(named_locks(options) ==
        std::vector<LockRequest>{
            {.path = "/srv/target.lock", .mode_name = "write", .mode = LockMode::exclusive},
            {.path = "/var/db.lock", .mode_name = "read", .mode = LockMode::shared},
            {.path = "etcd:///jobs", .mode_name = "exclusive", .mode = LockMode::exclusive}});
  CHECK(parse_ok({"read", "L", "cmd"}).also.empty());
  CHECK(parse_ok({"read", "--also", "write", "M", "L", "-c", "echo hi"}).command ==
        run::shell_command("echo hi"));
}

TEST_CASE("--also is a usage error with a bad mode, a lock named twice, --slots, -F or --fd") {
  check_usage_error({"write", "--also", "shared", "db", "L", "cmd"}, "bad mode in --also: 'shared'");
  check_usage_error({"write", "--also", "read", "", "L", "cmd"},
                    "bad LOCK in --also read: the path is empty");
  check_usage_error({"write", "--also", "read", "L", "cmd"}, "missing COMMAND after LOCK 'cmd'");
  check_usage_error({"write", "--also", "read", "L", "L", "cmd"},
                    "the lock 'L' is named twice, for write and for read: a lock is held in one mode");
  check_usage_error({"write", "--also", "exclusive", "M", "--also", "write", "M", "L", "cmd"},
                    "the lock 'M' is named twice: name each lock once");
  check_usage_error({"write", "--slots", "2", "--also", "read", "M", "L", "cmd"},
                    "--slots and --also cannot go together");
  if (run::has_inherited_descriptors() && locks_belong_to_open_files()) { // Otherwise --fd is refused first.
    check_usage_error({"exclusive", "--fd", "9", "--also", "read", "M"},
                      "--fd and --also cannot go together");
  }
  if (run::can_exec_in_place()) {
    check_usage_error({"write", "-F", "--also", "read", "M", "L", "cmd"}, "-F (--no-fork) and --also");
  }
  check_usage_error({"write", "--also", "read", "a\nb", "L", "cmd"}, "has a newline in its name");
}

TEST_CASE("at most k_max_locks locks at once, LOCK included") {
  Args args{"write"};
  for (size_t i = 1; i < cli::k_max_locks; ++i) {
    args.insert(args.end(), {"--also", "read", "lock" + std::to_string(i)});
  }
  args.insert(args.end(), {"L", "cmd"});
  CHECK(parse_ok(args).also.size() + 1 == cli::k_max_locks);
  args.insert(args.begin() + 1, {"--also", "read", "one-more"});
  check_usage_error(args, "too many locks: 65 (LOCK and each --also), at most 64 at once");
}

TEST_CASE("--ttl and --grace are taken where any of the locks is in etcd") {
  CHECK(parse_ok({"write", "--ttl", "5", "--also", "read", "etcd:///db", "L", "cmd"}).ttl == 5s);
  check_usage_error({"write", "--ttl", "5", "--also", "read", "M", "L", "cmd"}, "applies to etcd locks only");
}
