// The command line's side of the backend seam, against a fake lock: what the
// command gets from a hold, and what happens when a lock that can be lost is
// lost before or while the command runs. The etcd suite reaches the same
// paths through a real etcd; these need none.

#include <doctest/doctest.h>

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <thread>

#include "cli/lock-command.h"
#include "run/exit-codes.h"
#include "holder-posix.h"
#include "support.h"

using namespace fasten;
using namespace fasten::test;
using namespace std::chrono_literals;

namespace {

/// What a FakeLock gives and what the test sees of it; it outlives the lock,
/// which run_holding_lock destroys.
struct FakeLockState {
  Hold hold{};
  bool can_be_lost = false;
  /// Lost before the command can start.
  bool lost_at_once = false;
  std::mutex mutex{};
  LostHook hook{};
  int releases = 0;
  /// The locks acquired, by name, in the order taken, and those released.
  std::vector<std::string> acquired{};
  std::vector<std::string> released{};
  /// Locks that are never free: their acquire times out.
  std::vector<std::string> busy{};

  /// What a backend's thread does when the lock is lost.
  void lose(const std::string& reason) {
    std::lock_guard guard(mutex);
    hook(reason);
  }
};

/// A lock that is free unless its state names it busy, and gives the hold
/// its state names. Its place among several is its name's.
class FakeLock final : public Lock {
public:
  FakeLock(FakeLockState& state, std::string name) : m_state(state), m_name(std::move(name)) {}

  Result<std::optional<Hold>> acquire(LockMode, Timeout, const WaitHook&) override {
    if (std::ranges::find(m_state.busy, m_name) != m_state.busy.end()) {
      return std::optional<Hold>();
    }
    m_state.acquired.push_back(m_name);
    Hold hold = m_state.hold;
    if (m_state.can_be_lost) {
      hold.on_lost = [this](LostHook hook) {
        std::lock_guard guard(m_state.mutex);
        m_state.hook = std::move(hook);
        if (m_state.lost_at_once) {
          m_state.hook("the fake lease ran out");
        }
      };
    }
    return std::optional<Hold>(hold);
  }
  /// Under the mutex a loss is reported under, as a real backend stops its
  /// thread before it releases: the stop the loss requested is done with
  /// before run_holding_lock lets it go.
  Result<void> release() override {
    std::lock_guard guard(m_state.mutex);
    ++m_state.releases;
    m_state.released.push_back(m_name);
    return {};
  }
  Result<LockStatus> status() override { return LockStatus{}; }
  Result<LockPlace> place() const override {
    return LockPlace{.kind = LockPlace::Kind::etcd, .name = m_name};
  }

private:
  FakeLockState& m_state;
  std::string m_name;
};

/// A backend that opens a FakeLock on `state` for any LOCK.
Backend backend_of(FakeLockState& state) {
  return Backend{
      .open = [&state](const std::string& name, const BackendOptions&) -> Result<std::unique_ptr<Lock>> {
        return std::unique_ptr<Lock>(std::make_unique<FakeLock>(state, name));
      },
      .status = [](const std::string&, const BackendOptions&) -> Result<LockStatus> { return LockStatus{}; },
  };
}

/// run_and_wait blocks the signals it passes on, for good, as fasten runs
/// one command and ends: the tests that follow must get them back.
class SignalMaskKept {
public:
  SignalMaskKept() { pthread_sigmask(SIG_SETMASK, nullptr, &m_mask); }
  ~SignalMaskKept() { pthread_sigmask(SIG_SETMASK, &m_mask, nullptr); }
  SignalMaskKept(const SignalMaskKept&) = delete;
  SignalMaskKept& operator=(const SignalMaskKept&) = delete;

private:
  sigset_t m_mask{};
};

cli::LockOptions options_to_run(std::vector<std::string> command) {
  cli::LockOptions options;
  options.mode_name = "exclusive";
  options.lock_path = "fake://lock";
  options.command = std::move(command);
  options.grace = 2s;
  return options;
}

/// How run_holding_lock failed: its status and message (0 and "" if it did not).
std::pair<int, std::string> failure_of(const cli::LockOptions& options, const Backend& backend) {
  try {
    (void)cli::run_holding_lock(options, backend);
  } catch (const cli::Failure& failure) {
    return {failure.exit_status(), failure.what()};
  }
  return {0, ""};
}

} // namespace

TEST_CASE("the command gets the hold's variables besides FASTEN_LOCK and FASTEN_MODE") {
  FakeLockState lock{.hold = {.environment = {{"FASTEN_FENCING_TOKEN", "42"}, {"ETCD_LOCK_KEY", "jobs/1f"}}}};
  const auto backend = backend_of(lock);
  const SignalMaskKept mask;
  const auto ended = cli::run_holding_lock(
      options_to_run({"sh", "-c",
                      "test \"$FASTEN_LOCK $FASTEN_MODE $FASTEN_FENCING_TOKEN $ETCD_LOCK_KEY\" = "
                      "'fake://lock exclusive 42 jobs/1f'"}),
      backend);
  CHECK(ended.code() == 0);
}

TEST_CASE("a lock lost before the command starts ends with 76 and the command never runs") {
  TempDir dir;
  const auto ran = dir.path() / "ran";
  FakeLockState lock{.can_be_lost = true, .lost_at_once = true};
  const auto backend = backend_of(lock);
  const SignalMaskKept mask;
  const auto [status, message] = failure_of(options_to_run({"touch", ran.string()}), backend);
  CHECK(status == exit_code::k_lock_lost);
  CHECK(message == "lost the lock fake://lock: the fake lease ran out; the command was not started");
  CHECK_FALSE(std::filesystem::exists(ran));
  CHECK(lock.releases == 1);
}

TEST_CASE("a lock lost while the command runs stops the command and ends with 76") {
  TempDir dir;
  const auto started = dir.path() / "started";
  const auto survived = dir.path() / "survived";
  FakeLockState lock{.can_be_lost = true};
  const auto backend = backend_of(lock);
  const SignalMaskKept mask;
  auto loser = when_file_exists(started, [&lock] { lock.lose("the fake lease ran out"); });
  const auto [status, message] = failure_of(
      options_to_run(
          {"sh", "-c", "touch '" + started.string() + "'; sleep 60; touch '" + survived.string() + "'"}),
      backend);
  loser.join();
  CHECK(status == exit_code::k_lock_lost);
  CHECK(message == "lost the lock fake://lock: the fake lease ran out; the command was stopped");
  CHECK_FALSE(std::filesystem::exists(survived));
  CHECK(lock.releases == 1);
}

TEST_CASE("a lock that cannot be lost leaves the command to end by itself") {
  FakeLockState lock;
  const auto backend = backend_of(lock);
  const SignalMaskKept mask;
  CHECK(cli::run_holding_lock(options_to_run({"sh", "-c", "exit 7"}), backend).code() == 7);
}

TEST_CASE("several locks are taken in one order whatever the order named, and the command learns them all") {
  FakeLockState lock{.hold = {.environment = {{"FASTEN_FENCING_TOKEN", "42"}}}};
  const auto backend = backend_of(lock);
  const SignalMaskKept mask;
  auto options = options_to_run({"sh", "-c",
                                 "test \"$FASTEN_LOCK $FASTEN_MODE\" = 'fake://c exclusive' && "
                                 "test \"$FASTEN_LOCKS\" = \"$(printf 'exclusive 42 fake://c\\nread 42 "
                                 "fake://a\\nwrite 42 fake://b')\""});
  options.lock_path = "fake://c";
  options.also = {{.path = "fake://a", .mode_name = "read", .mode = LockMode::shared},
                  {.path = "fake://b", .mode_name = "write", .mode = LockMode::exclusive}};
  CHECK(cli::run_holding_lock(options, backend).code() == 0);
  CHECK(lock.acquired == std::vector<std::string>{"fake://a", "fake://b", "fake://c"});
  CHECK(lock.released == std::vector<std::string>{"fake://c", "fake://b", "fake://a"});
}

TEST_CASE("a lock of several that is not free in time lets go of those taken before it, and the command "
          "never runs") {
  TempDir dir;
  const auto ran = dir.path() / "ran";
  FakeLockState lock{.busy = {"fake://b"}};
  const auto backend = backend_of(lock);
  auto options = options_to_run({"touch", ran.string()});
  options.lock_path = "fake://c";
  options.also = {{.path = "fake://b", .mode_name = "read", .mode = LockMode::shared},
                  {.path = "fake://a", .mode_name = "read", .mode = LockMode::shared}};
  CHECK(cli::run_holding_lock(options, backend).code() == exit_code::k_conflict);
  CHECK(lock.acquired == std::vector<std::string>{"fake://a"});
  CHECK(lock.released == std::vector<std::string>{"fake://a"});
  CHECK_FALSE(std::filesystem::exists(ran));
}

TEST_CASE("two names of one lock among several are a usage error before any is taken") {
  FakeLockState lock{};
  Backend backend = backend_of(lock);
  // Both names open the same fake lock, as two paths of one file would.
  backend.open = [&lock](const std::string&, const BackendOptions&) -> Result<std::unique_ptr<Lock>> {
    return std::unique_ptr<Lock>(std::make_unique<FakeLock>(lock, "fake://same"));
  };
  auto options = options_to_run({"true"});
  options.also = {{.path = "fake://other", .mode_name = "exclusive", .mode = LockMode::exclusive}};
  const auto [status, message] = failure_of(options, backend);
  CHECK(status == exit_code::k_usage);
  CHECK(message == "the lock 'fake://lock' is named twice (also as 'fake://other'): name each lock once");
  CHECK(lock.acquired.empty());
}

TEST_CASE("FASTEN_LOCKS has a line for each lock: its mode, its fencing token or -, and its name last") {
  CHECK(cli::locks_variable({{.mode_name = "write", .path = "/srv/a b"},
                             {.mode_name = "read", .path = "etcd:///db", .fencing_token = "7"}}) ==
        "write - /srv/a b\nread 7 etcd:///db");
  CHECK(cli::locks_variable({{.mode_name = "exclusive", .path = "L"}}) == "exclusive - L");
}
