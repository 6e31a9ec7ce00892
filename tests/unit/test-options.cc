#include <doctest/doctest.h>

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
  check_usage_error({"-snw5", "L", "cmd"}, "fasten read -n -w SECONDS LOCK COMMAND");
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
  for (const auto& [status, meaning] : exit_code::k_statuses) {
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
