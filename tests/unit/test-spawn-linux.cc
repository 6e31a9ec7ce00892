// Running the command on Linux: a stop request, its grace period, and what
// waiting for the command costs.

#include <doctest/doctest.h>

#include <pthread.h>
#include <sys/resource.h>
#include <signal.h>
#include <time.h>

#include <filesystem>
#include <iterator>
#include <thread>
#include <utility>
#include <vector>

#include "run/dispositions-linux.h"
#include "run/spawn.h"
#include "holder-posix.h"
#include "support.h"

using namespace fasten;
using namespace fasten::test;
using namespace std::chrono_literals;

namespace {

double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

/// How many descriptors this process has open (the listing's own among them,
/// each time).
std::ptrdiff_t open_descriptors() {
  return std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                       std::filesystem::directory_iterator());
}

} // namespace

TEST_CASE("waiting out the grace period of a stopped command that ignores SIGTERM costs no CPU") {
  TempDir dir;
  run::StopRequest stop;
  const auto ready = dir / "ready";
  run::CommandSpec command{
      .argv = run::shell_command("trap '' TERM; touch '" + ready.string() + "'; exec sleep 30"),
      .inherit_fd = std::nullopt,
      .die_with_parent = true,
      .keeper_keeps = std::nullopt,
      .own_process_group = true,
      .stop = &stop,
      .grace = 1s,
  };
  std::thread requester = when_file_exists(ready, [&stop] { stop.request(); });
  const double cpu_before = thread_cpu_seconds();
  const auto start = Clock::now();
  const auto ended = run::run_and_wait(command);
  const double cpu = thread_cpu_seconds() - cpu_before;
  const double elapsed = seconds_since(start);
  requester.join();
  REQUIRE(ended.ok());
  CHECK(ended->stopped);
  CHECK(ended->status.signal() == SIGKILL);
  CHECK(elapsed >= 1.0);
  MESSAGE("CPU time of the waiting thread: " << cpu << " s over " << elapsed << " s");
  CHECK(cpu < 0.1);
}

TEST_CASE("running a command, stopping one or failing to start one leaves no descriptor of fasten's open") {
  const auto before = open_descriptors();
  run::CommandSpec command;
  command.argv = {"true"};
  const auto ran = run::run_and_wait(command);
  REQUIRE(ran.ok());
  CHECK(ran->status.code() == 0);

  command.argv = {"fasten-test-no-such-command"};
  const auto failed = run::run_and_wait(command);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().kind() == ErrorKind::not_found);
  // Worded as the shell words it: the command first.
  CHECK(failed.error().message() == "fasten-test-no-such-command: command not found");

  {
    run::StopRequest stop;
    stop.request();
    command.argv = {"sleep", "30"};
    command.own_process_group = true;
    command.stop = &stop;
    const auto stopped = run::run_and_wait(command);
    REQUIRE(stopped.ok());
    CHECK(stopped->stopped);
  }
  CHECK(open_descriptors() == before);
}

TEST_CASE("a stop request that could not be made says why, with the system's own error") {
  // Every descriptor taken, so that the eventfd cannot be made.
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  rlimit none = saved;
  none.rlim_cur = 0;
  REQUIRE(setrlimit(RLIMIT_NOFILE, &none) == 0);
  run::StopRequest stop;
  setrlimit(RLIMIT_NOFILE, &saved);
  CHECK(stop.error() == EMFILE);
  run::CommandSpec command;
  command.argv = {"true"};
  command.stop = &stop;
  const auto ran = run::run_and_wait(command);
  REQUIRE_FALSE(ran.ok());
  CHECK(ran.error().sys_errno() == EMFILE);
  CHECK(ran.error().message().find("eventfd") != std::string::npos);
}

namespace {

extern "C" void on_test_signal(int) {
}

/// The signals of `set`, as numbers.
std::vector<int> members(const sigset_t& set) {
  std::vector<int> found;
  for (int signal = 1; signal < NSIG; ++signal) {
    if (sigismember(&set, signal) == 1) {
      found.push_back(signal);
    }
  }
  return found;
}

} // namespace

TEST_CASE("the signal dispositions read from procfs are those that sigaction gives, one by one") {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction handle {};
  handle.sa_handler = on_test_signal;
  struct sigaction by_default {};
  by_default.sa_handler = SIG_DFL;
  const std::vector<std::pair<int, const struct sigaction*>> set{
      {SIGUSR2, &ignore}, {SIGWINCH, &ignore},     {SIGRTMIN + 5, &ignore}, {SIGRTMAX, &ignore},
      {SIGHUP, &handle},  {SIGRTMIN + 7, &handle}, {SIGUSR1, &by_default}};
  std::vector<struct sigaction> before(set.size());
  for (size_t i = 0; i < set.size(); ++i) {
    REQUIRE(sigaction(set[i].first, set[i].second, &before[i]) == 0);
  }
  const auto from_procfs = run::dispositions_from_procfs();
  const auto asked = run::dispositions_by_asking();
  for (size_t i = 0; i < set.size(); ++i) {
    sigaction(set[i].first, &before[i], nullptr);
  }
  REQUIRE(from_procfs.has_value());
  CHECK(members(from_procfs->ignored) == members(asked.ignored));
  CHECK(members(from_procfs->caught) == members(asked.caught));
  for (const int signal : {SIGUSR2, SIGWINCH, SIGRTMIN + 5, SIGRTMAX}) {
    CHECK(sigismember(&from_procfs->ignored, signal) == 1);
  }
  for (const int signal : {SIGHUP, SIGRTMIN + 7}) {
    CHECK(sigismember(&from_procfs->caught, signal) == 1);
  }
  CHECK(sigismember(&from_procfs->ignored, SIGUSR1) == 0);
  CHECK(sigismember(&from_procfs->caught, SIGUSR1) == 0);
}
