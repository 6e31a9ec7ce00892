#include "etcd/lock.h"

#include <signal.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <mutex>
#include <thread>
#include <utility>

#include "etcd/client.h"
#include "etcd/queue.h"
#include "etcd/revoke-on-signal.h"
#include "etcd/url.h"
#include "lock/deadline.h"
#include "lock/wakeup-linux.h"

namespace fasten {

namespace {

using Nanoseconds = std::chrono::nanoseconds;
using etcd::BootClock;
using etcd::KeyKind;
using etcd::Milliseconds;

/// After a request that found no endpoint: how long before the next try.
constexpr Milliseconds k_retry_interval{100};
/// How long a release may wait for etcd once the lock is lost anyway.
constexpr Milliseconds k_lost_revoke_timeout{1000};
/// While a waiter waits out a vanished holder: how often it checks its own
/// lease and deadline.
constexpr Milliseconds k_outwait_step{250};
/// ... and how often it looks whether the marks it waits for have gone.
constexpr Milliseconds k_outwait_look{1000};

/// How much earlier than etcd fasten counts a lease as run out: for clocks
/// that run at slightly different rates, and for the time the lost-lock
/// handling takes. A fifth of the TTL, at most a second.
Nanoseconds safety_margin(std::chrono::seconds ttl) {
  return std::min<Nanoseconds>(std::chrono::seconds(1), Nanoseconds(ttl) / 5);
}

/// A watch's timeout: the time left, rounded up to a whole millisecond and at
/// least one (a watch of 0 would end before it starts), and at most `recheck`
/// (EtcdOptions::recheck). A watch on a member that hangs (paused, cut off)
/// would wait for as long as the member does and hears nothing in the
/// meantime; the look again is a request, which moves on to a member that
/// answers, and the next watch goes there. A release still wakes the waiter
/// at once, through the watch, and a watch that breaks (its member died)
/// makes it look again at once, not at the re-check.
Milliseconds watch_timeout(const Deadline& deadline, Milliseconds recheck) {
  if (deadline.is_forever()) {
    return recheck;
  }
  return std::clamp(std::chrono::ceil<Milliseconds>(deadline.left()), Milliseconds(1), recheck);
}

/// Keeps a lease alive from a thread of its own, and notices when it is lost.
class LeaseKeeper {
public:
  /// Starts renewing `lease`. `granter` is the client that got it: the
  /// lease's time counts from the request it answered, and renewals start
  /// with its endpoint. An ErrorKind::system error when the keeper cannot
  /// be woken to stop (no eventfd).
  static Result<std::unique_ptr<LeaseKeeper>> start(const std::vector<std::string>& endpoints,
                                                    etcd::Lease lease, const etcd::Client& granter) {
    Wakeup wake;
    if (!wake.valid()) {
      return Error(ErrorKind::system, "cannot keep the lease of the lock (eventfd)", endpoints.front(),
                   wake.error());
    }
    return std::unique_ptr<LeaseKeeper>(new LeaseKeeper(endpoints, lease, granter, std::move(wake)));
  }

  ~LeaseKeeper() { stop(); }
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  std::int64_t id() const noexcept { return m_lease.id; }
  std::chrono::seconds ttl() const noexcept { return m_lease.ttl; }
  const std::atomic<bool>& lost_flag() const noexcept { return m_lost; }
  bool lost() const noexcept { return m_lost.load(); }
  /// Whether the lease may have run out on the server by now: lost, or past
  /// the deadline that the keeper's thread may not have woken to yet.
  bool expired() const noexcept {
    return m_lost.load() || BootClock::now().time_since_epoch().count() >= m_expires_at.load();
  }

  std::string lost_reason() const {
    std::lock_guard guard(m_mutex);
    return m_reason;
  }

  /// From now on, a renewal counts only once a read of `key` made after it
  /// finds the key on this lease, created at `create_revision`.
  void watch_key(std::string key, std::int64_t create_revision) {
    std::lock_guard guard(m_mutex);
    m_key = {.key = std::move(key), .create_revision = create_revision};
  }

  /// From now on, every deadline is also stored in `*at` (see
  /// Hold::share_deadline), the current one at once.
  void share_deadline(std::atomic<std::int64_t>* at) {
    std::lock_guard guard(m_mutex);
    m_shared_deadline = at;
    at->store(m_expires_at.load());
  }

  void on_lost(LostHook hook) {
    std::string reason;
    {
      std::lock_guard guard(m_mutex);
      m_hook = hook;
      if (!m_lost) {
        return;
      }
      reason = m_reason;
    }
    if (hook) {
      hook(reason);
    }
  }

  /// Stops renewing; a request in progress gives up.
  void stop() noexcept {
    if (!m_thread.joinable()) {
      return;
    }
    m_stopping = true;
    m_wake.wake();
    m_thread.join();
  }

private:
  LeaseKeeper(const std::vector<std::string>& endpoints, etcd::Lease lease, const etcd::Client& granter,
              Wakeup wake)
      : m_client(endpoints), m_lease(lease),
        m_deadline(granter.answered_try_sent_at() + lease.ttl - safety_margin(lease.ttl)),
        m_next(granter.answered_try_sent_at() + Nanoseconds(lease.ttl) / 3), m_wake(std::move(wake)) {
    m_expires_at = m_deadline.time_since_epoch().count();
    m_client.start_with(granter.current_endpoint());
    m_client.set_abort_flag(&m_stopping);
    // The thread takes no signal: those meant for fasten (forwarded to the
    // command, or ending it while it waits) must reach the main thread.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    m_thread = std::thread([this] { run(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  /// The lock is lost at m_deadline, before the lease can have run out on
  /// the server: every request ends by then, however many endpoints it
  /// tries, and the loop comes round to the check at its top.
  void run() {
    std::string last_failure;
    while (sleep_until(m_next)) {
      if (BootClock::now() >= m_deadline) {
        lose("its lease was not renewed within its TTL of " + std::to_string(m_lease.ttl.count()) + " s" +
             (last_failure.empty() ? "" : " (last try: " + last_failure + ")"));
        return;
      }
      const auto renewal = renew(last_failure);
      if (m_stopping || renewal == Renewal::lost) {
        return;
      }
      if (renewal == Renewal::not_counted) {
        m_next = std::min(BootClock::now() + k_retry_interval, m_deadline);
      }
    }
  }

  /// What one renewal came to.
  enum class Renewal { counted, not_counted, lost };

  /// Renews the lease once. A renewal counts (moves the deadline on) only
  /// once etcd has answered it with a TTL and a linearizable read of the
  /// key, made after it, found the key still there on this lease, created
  /// at the revision it was, in a raft term no newer than the renewal's: a
  /// member that lost its quorum, or a leader deposed while it was stopped,
  /// answers keep-alives from a lessor that no longer decides (etcd issue
  /// 15247), but cannot answer that read (etcd 3.4's ReadIndex needs the
  /// quorum's leader) until it has learnt the newer term. Why it did not
  /// count goes to `failure`, unless it was only cut short by the deadline
  /// and an earlier try said more.
  Renewal renew(std::string& failure) {
    const auto note = [this, &failure](std::string why) {
      if (failure.empty() || BootClock::now() < m_deadline) {
        failure = std::move(why);
      }
    };
    auto renewed = m_client.keep_alive(m_lease.id, request_deadline());
    if (m_stopping) {
      return Renewal::not_counted;
    }
    if (!renewed) {
      note(renewed.error().message());
      return Renewal::not_counted;
    }
    if (!renewed.value()) {
      lose("etcd says its lease has expired or was revoked");
      return Renewal::lost;
    }
    // From the try that was answered, sent before the read: time lost on a
    // silent endpoint before it does not shorten the renewed lease, and the
    // time the read took does not lengthen it.
    const auto renewed_from = m_client.answered_try_sent_at();
    const auto ttl = renewed.value()->ttl;
    auto read_in = key_still_ours();
    if (!read_in) {
      note("no read of its key confirmed the renewal: " + read_in.error().message());
      return Renewal::not_counted;
    }
    if (!read_in.value()) {
      return Renewal::lost;
    }
    // Answered in a term older than the read's: by a leader since deposed,
    // whose lessor no longer decides. Terms that either answer left out are
    // not compared.
    const auto renewed_in = renewed.value()->raft_term;
    if (renewed_in != 0 && *read_in.value() != 0 && renewed_in < *read_in.value()) {
      note("etcd answered the renewal in raft term " + std::to_string(renewed_in) +
           ", older than the term of the read that followed (" + std::to_string(*read_in.value()) + ")");
      return Renewal::not_counted;
    }
    failure.clear();
    set_deadline(renewed_from + ttl - safety_margin(ttl));
    m_next = renewed_from + Nanoseconds(ttl) / 3;
    return Renewal::counted;
  }

  /// A request's deadline: the lease's, or the usual request timeout if
  /// that is nearer.
  etcd::Deadline request_deadline() const {
    return etcd::Deadline::at(std::min(m_deadline, BootClock::now() + etcd::Timeouts{}.request));
  }

  /// Reads the watched key (linearizable, the gateway's default):
  /// std::nullopt, having lost the lock, when it has gone (deleted by hand,
  /// or its lease expired on etcd's leader), is on another lease, or was
  /// created again; else the raft term the read was answered in (0 when no
  /// key is watched yet); an error when etcd did not answer.
  Result<std::optional<std::int64_t>> key_still_ours() {
    OwnKey own;
    {
      std::lock_guard guard(m_mutex);
      own = m_key;
    }
    if (own.key.empty()) {
      return std::optional<std::int64_t>(0);
    }
    // Within the lease's deadline: an etcd that stops answering here must not
    // keep the next renewal, or the loss, waiting.
    const auto found = FASTEN_TRY(m_client.range({.key = own.key, .keys_only = true}, request_deadline()));
    if (m_stopping) {
      return std::optional<std::int64_t>(found.raft_term);
    }
    if (found.kvs.empty()) {
      lose("its key " + own.key + " was deleted");
      return std::optional<std::int64_t>();
    }
    const auto& kv = found.kvs.front();
    if (kv.lease != m_lease.id) {
      lose("its key " + own.key + " is on another lease");
      return std::optional<std::int64_t>();
    }
    if (kv.create_revision != own.create_revision) {
      lose("its key " + own.key + " was deleted and created again");
      return std::optional<std::int64_t>();
    }
    return std::optional<std::int64_t>(found.raft_term);
  }

  /// Waits until `when` on CLOCK_BOOTTIME; false when asked to stop.
  bool sleep_until(BootClock::time_point when) {
    while (!m_stopping) {
      const auto left = when - BootClock::now();
      if (left <= Nanoseconds(0)) {
        return true;
      }
      pollfd wake{m_wake.descriptor(), POLLIN, 0};
      // poll's timeout runs on CLOCK_MONOTONIC, which stops while the machine
      // sleeps: the loop measures again on CLOCK_BOOTTIME.
      const auto ms = std::chrono::ceil<Milliseconds>(left).count();
      (void)poll(&wake, 1, static_cast<int>(std::min<std::int64_t>(ms, 1000)));
    }
    return false;
  }

  void lose(std::string reason) {
    LostHook hook;
    {
      std::lock_guard guard(m_mutex);
      m_reason = std::move(reason);
      m_lost = true;
      hook = m_hook;
    }
    if (hook) {
      hook(lost_reason());
    }
  }

  void set_deadline(BootClock::time_point deadline) {
    m_deadline = deadline;
    m_expires_at = deadline.time_since_epoch().count();
    std::lock_guard guard(m_mutex);
    if (m_shared_deadline != nullptr) {
      m_shared_deadline->store(m_expires_at.load());
    }
  }

  etcd::Client m_client;
  etcd::Lease m_lease;
  BootClock::time_point m_deadline;
  /// m_deadline, for other threads.
  std::atomic<BootClock::rep> m_expires_at;
  /// Where m_expires_at is shared with another process too, or null; under m_mutex.
  std::atomic<std::int64_t>* m_shared_deadline = nullptr;
  BootClock::time_point m_next;
  std::atomic<bool> m_stopping{false};
  std::atomic<bool> m_lost{false};
  mutable std::mutex m_mutex;
  std::string m_reason;
  /// The lock's key, once it has one; under m_mutex.
  struct OwnKey {
    std::string key;
    std::int64_t create_revision = 0;
  } m_key;
  LostHook m_hook;
  Wakeup m_wake;
  std::thread m_thread;
};

/// Has a client's waits act on an interrupt (a waiter's RevokeOnSignal) for
/// as long as it lives.
class ActingOn {
public:
  ActingOn(etcd::Client& client, const etcd::http::Interrupt& interrupt) : m_client(client) {
    client.set_interrupt(&interrupt);
  }
  ~ActingOn() { m_client.set_interrupt(nullptr); }
  ActingOn(const ActingOn&) = delete;
  ActingOn& operator=(const ActingOn&) = delete;

private:
  etcd::Client& m_client;
};

/// Lifts a client's cap on its requests (a waiter's -w) for as long as it
/// lives.
class Uncapped {
public:
  explicit Uncapped(etcd::Client& client) : m_client(client), m_cap(client.requests_capped_at()) {
    client.cap_requests_at(std::nullopt);
  }
  ~Uncapped() { m_client.cap_requests_at(m_cap); }
  Uncapped(const Uncapped&) = delete;
  Uncapped& operator=(const Uncapped&) = delete;

private:
  etcd::Client& m_client;
  std::optional<BootClock::time_point> m_cap;
};

class EtcdLock final : public Lock {
public:
  EtcdLock(std::string name, EtcdUrl url, const BackendOptions& options, EtcdOptions etcd)
      : m_name(std::move(name)), m_url(std::move(url)), m_slots(options.slots), m_options(std::move(etcd)),
        m_client(m_url.endpoints) {}

  ~EtcdLock() override { give_up(); }

  Result<LockStatus> status() override { return status_of(m_client, m_url.name, m_options.ttl); }
  bool status_is_local() const noexcept override { return false; }
  Result<LockPlace> place() const override {
    return LockPlace{.kind = LockPlace::Kind::etcd, .name = m_url.name};
  }

  /// The queue's keys and their marks, read at one revision (so that no
  /// key being made or deleted with its mark looks vanished).
  static Result<LockStatus> status_of(etcd::Client& client, const std::string& name,
                                      std::chrono::seconds ttl) {
    auto keys = prefix_range(etcd::queue_prefix(name));
    keys.keys_only = false;
    keys.order = etcd::Order::oldest_first;
    auto marks = prefix_range(etcd::mark_prefix(name));
    marks.keys_only = false;
    marks.order = etcd::Order::oldest_first;
    const auto read = client.ranges({keys, marks});
    if (!read) {
      if (read.error().kind() != ErrorKind::denied) {
        return read.error();
      }
      // A role granted the lock's keys alone: the marks' prefix is the one it misses.
      return Error(ErrorKind::denied, read.error().what(), read.error().subject(),
                   read.error().detail() + " (status needs read on " + etcd::queue_prefix(name) + " and " +
                       etcd::mark_prefix(name) + ")");
    }
    return etcd::status_from_keys(name, read->at(0).kvs, read->at(1).kvs, ttl);
  }

  Result<std::optional<Hold>> acquire(LockMode mode, Timeout timeout, const WaitHook& on_wait) override {
    if (m_held) {
      return Error(ErrorKind::misuse, "the lock is already held by this object (locks are not reentrant)",
                   m_name);
    }
    const Deadline deadline(timeout);
    // With -w, etcd's answers count against it too: an etcd that does not
    // answer at all ends the wait by its deadline (status 69, saying so),
    // not at the requests' own timeouts. (-n still makes each request once, with
    // its own timeout.)
    const bool capped = !deadline.is_forever() && !deadline.passed();
    m_client.cap_requests_at(capped ? std::optional(BootClock::now() + deadline.left()) : std::nullopt);
    const auto answered_before = m_client.answered_try_sent_at();
    auto held = acquire_by(mode, deadline, on_wait);
    m_client.cap_requests_at(std::nullopt);
    // A request cut short by -w once etcd had answered others is a wait that
    // timed out, as one between requests is: the conflict status.
    if (!held && held.error().kind() == ErrorKind::unavailable && capped && deadline.passed() &&
        m_client.answered_try_sent_at() != answered_before) {
      return std::optional<Hold>();
    }
    return held;
  }

  /// acquire() within `deadline`.
  Result<std::optional<Hold>> acquire_by(LockMode mode, const Deadline& deadline, const WaitHook& on_wait) {
    bool told = false;
    const WaitHook tell_once = [&told, &on_wait] {
      if (!std::exchange(told, true) && on_wait) {
        on_wait();
      }
    };
    auto lease = FASTEN_TRY(m_client.grant(m_options.ttl));
    while (true) {
      auto held = queue_and_wait(mode, lease, deadline, tell_once);
      if (held || held.error().kind() != ErrorKind::lost) {
        return held;
      }
      // A waiter holds nothing: a lease that may have run out (etcd was
      // electing a leader, say) costs it its place, which it takes again
      // with a new lease, within the same deadline. Its old key went with
      // the revoke that lose_place tried.
      if (m_options.on_requeue) {
        m_options.on_requeue(held.error().detail());
      }
      auto again = FASTEN_TRY(grant_again(deadline));
      if (!again) {
        return std::optional<Hold>();
      }
      lease = *again;
    }
  }

  Result<void> release() override {
    if (!m_held) {
      return Error(ErrorKind::misuse, "the lock is not held", m_name);
    }
    m_held.reset();
    const bool lost = m_keeper->lost();
    const auto ttl = m_keeper->ttl();
    auto revoked = leave();
    if (!revoked && !lost) {
      return Error(ErrorKind::unavailable,
                   "cannot release the lock (etcd lets it go when its lease runs out, within " +
                       std::to_string(ttl.count()) + " s)",
                   m_name, revoked.error().message());
    }
    return {};
  }

private:
  /// What the command gets: the fencing token (the key's create revision, a
  /// number that grows from holder to holder, for the resources the command
  /// writes to, to refuse a holder that has lost the lock), the two variables
  /// that `etcdctl lock NAME COMMAND` sets, and a stop when the lease is lost.
  Hold hold(const std::string& key, std::int64_t revision, std::optional<int> slot) {
    const std::string token = std::to_string(revision);
    return Hold{
        .environment = {{"FASTEN_FENCING_TOKEN", token}, {"ETCD_LOCK_KEY", key}, {"ETCD_LOCK_REV", token}},
        .slot = slot,
        .detail = "key " + key + ", fencing token " + token,
        .on_lost = [this](LostHook hook) { m_keeper->on_lost(std::move(hook)); },
        .share_deadline = [this](std::atomic<std::int64_t>* at) { m_keeper->share_deadline(at); },
    };
  }

  /// A holder's key in the queue, and its mark (queue.h).
  struct Place {
    KeyKind kind;
    std::string key;
    std::string mark;
    std::int64_t lease;
  };

  /// The N of --slots; 1 for a lock without (a writer's, in slot 0).
  int slots() const noexcept { return m_slots.value_or(1); }

  /// What the holder stores in its key; `slot` once it holds one.
  std::string value_of(const Place& place, std::optional<int> slot) const {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    return etcd::holder_value(
        {.host = host,
         .pid = getpid(),
         .command = m_options.holder_command,
         .slots = place.kind == KeyKind::slot ? std::optional<int>(slots()) : std::nullopt,
         .slot = slot});
  }

  /// Queues with a key on `lease` and waits for the lock. An ErrorKind::lost
  /// error when the place was lost while waiting (the lease may have run
  /// out, or the key was deleted): the caller may queue again.
  Result<std::optional<Hold>> queue_and_wait(LockMode mode, etcd::Lease lease, const Deadline& deadline,
                                             const WaitHook& on_wait) {
    const auto kind = mode == LockMode::shared ? KeyKind::reader
                      : slots() > 1            ? KeyKind::slot
                                               : KeyKind::writer;
    // From here until it has the lock, a signal that ends fasten leaves the
    // queue first. (While the command runs, signals go to the command, and
    // fasten releases once it has ended.)
    const Place place{.kind = kind,
                      .key = etcd::queue_key(m_url.name, kind, lease.id),
                      .mark = etcd::mark_key(m_url.name, etcd::queue_key(m_url.name, kind, lease.id)),
                      .lease = lease.id};
    const etcd::RevokeOnSignal leave_on_signal(m_url.endpoints, m_client.current_endpoint(), lease.id,
                                               place.key, place.mark);
    const ActingOn acting_on(m_client, leave_on_signal.interrupt());
    // Renewed from before queueing: a long wait must not cost the lease.
    auto keeper = LeaseKeeper::start(m_url.endpoints, lease, m_client);
    if (!keeper) {
      (void)m_client.revoke(lease.id, etcd::Deadline(k_lost_revoke_timeout));
      return keeper.error();
    }
    m_keeper = std::move(keeper).value();
    m_place = place;
    m_client.set_abort_flag(&m_keeper->lost_flag());

    // The first look at the queue is read by the transaction that makes the
    // key and its mark.
    auto created = m_client.create_key(place.key, value_of(place, std::nullopt), lease.id,
                                       {{.key = place.mark, .value = etcd::mark_value(lease.ttl)}},
                                       queue_ahead(place, 0));
    if (!created) {
      if (m_keeper->lost()) {
        return lose_place(); // the lease ran out while etcd did not answer
      }
      give_up();
      return refused_marks_too(created.error());
    }
    const auto revision = created->revision;
    m_keeper->watch_key(place.key, revision);
    auto slot = acquire_in_turn(place, revision, std::move(created->looks), deadline, on_wait);
    if (!slot || !slot.value()) {
      give_up();
      return slot ? Result<std::optional<Hold>>(std::optional<Hold>()) : slot.error();
    }
    // Its key was there at the last look, but the lease may have run out
    // since: never a hold on a lease that may be gone.
    if (m_keeper->expired()) {
      return lose_place();
    }
    m_held = mode;
    etcd::note_held_lease(m_url.endpoints, place.lease, place.key, place.mark);
    // FASTEN_SLOT only with --slots, as for a lock file.
    return std::optional<Hold>(hold(place.key, revision, m_slots ? *slot.value() : std::optional<int>()));
  }

  /// A refusal of the transaction that makes the key and its mark says
  /// which prefixes the role needs: the mark's is the one a grant of the
  /// lock's own keys leaves out.
  Error refused_marks_too(const Error& error) const {
    if (error.kind() != ErrorKind::denied) {
      return error;
    }
    return Error(ErrorKind::denied, error.what(), error.subject(),
                 error.detail() + " (the role needs readwrite on " + etcd::queue_prefix(m_url.name) + " and " +
                     etcd::mark_prefix(m_url.name) + ")");
  }

  /// A new lease for a waiter that lost its place. etcd may be electing a
  /// leader, or may have just lost one: grants are tried again for up to a
  /// request's timeout before etcd counts as unreachable. std::nullopt when
  /// the deadline passes first.
  Result<std::optional<etcd::Lease>> grant_again(const Deadline& deadline) {
    const etcd::Deadline patience(etcd::Timeouts{}.request);
    while (!deadline.passed()) {
      auto lease = m_client.grant(m_options.ttl);
      if (lease) {
        return std::optional<etcd::Lease>(lease.value());
      }
      if (lease.error().kind() == ErrorKind::denied || patience.passed()) {
        return lease.error();
      }
      m_client.pause(k_retry_interval);
    }
    return std::optional<etcd::Lease>();
  }

  /// Waits for the lock, and then for a slot of it; the slot (0 unless a
  /// slot holder's), or std::nullopt when the deadline passed first.
  /// `first_look` is the queue ahead as the transaction that made the key
  /// read it, if it did.
  Result<std::optional<int>> acquire_in_turn(const Place& place, std::int64_t revision,
                                             std::optional<etcd::Looks> first_look,
                                             const Deadline& deadline, const WaitHook& on_wait) {
    const bool turn = FASTEN_TRY(wait_for_turn(place, revision, std::move(first_look), deadline, on_wait));
    if (!turn) {
      return std::optional<int>();
    }
    if (place.kind != KeyKind::slot) {
      return std::optional<int>(0);
    }
    return claim_slot(place, revision, deadline);
  }

  /// The keys of the queue that `place` waits for (queue.h), newest first:
  /// those created before `revision`; with 0, every key, and one more for a
  /// writer, for the transaction that makes the key (looked_at_creation
  /// leaves out the key itself and its mark). Then their marks, as many:
  /// at a writer's turn, when no key is older, any older mark is a vanished
  /// holder's.
  std::vector<etcd::RangeRequest> queue_ahead(const Place& place, std::int64_t revision) const {
    const bool writer = place.kind == KeyKind::writer;
    const etcd::RangeRequest keys{.key = etcd::queue_prefix(m_url.name),
                                  .range_end = etcd::prefix_end(etcd::queue_prefix(m_url.name)),
                                  .max_create_revision = revision == 0 ? 0 : revision - 1,
                                  .order = etcd::Order::newest_first,
                                  .limit = writer ? (revision == 0 ? 2 : 1) : 0,
                                  .keys_only = place.kind != KeyKind::slot};
    auto marks = keys;
    marks.key = etcd::mark_prefix(m_url.name);
    marks.range_end = etcd::prefix_end(marks.key);
    marks.keys_only = true;
    return {keys, marks};
  }

  /// Waits until the keys ahead of `place` (created at `revision`) let it
  /// in (queue.h); false when the deadline passes first. Each look at the
  /// queue is read only while the holder's own key is still there on its
  /// lease (range_if); `look`, the first, was read with the key's creation.
  Result<bool> wait_for_turn(const Place& place, std::int64_t revision, std::optional<etcd::Looks> look,
                             const Deadline& deadline, const WaitHook& on_wait) {
    bool waited = false;
    while (true) {
      if (m_keeper->lost()) {
        return lose_place();
      }
      if (!look) {
        auto read = m_client.range_if({.key = place.key, .create_revision = revision, .lease = place.lease},
                                      queue_ahead(place, revision));
        if (!read) {
          FASTEN_TRY(retry_or_fail(read.error()));
          if (deadline.passed()) {
            return false;
          }
          continue;
        }
        if (!read.value()) {
          return lose_place(); // its key was revoked, deleted, or put on another lease
        }
        look = std::move(read.value());
      }
      const auto& [keys, marks] = std::tie(look->at(0), look->at(1));
      const auto wait = etcd::what_to_wait_for(m_url.name, place.kind, slots(), keys.kvs, keys.revision);
      const bool vanished =
          !wait && !etcd::vanished(m_url.name, keys.kvs, marks.kvs, etcd::excluding(place.kind), m_options.ttl)
                        .holders.empty();
      if (!wait && !vanished) {
        arm_unexcluding(revision, keys.kvs, marks.kvs);
        return true;
      }
      look.reset();
      if (!waited && !deadline.passed()) {
        waited = true;
        if (on_wait) {
          on_wait();
        }
      }
      // A vanished holder is waited out, and its mark armed even where the
      // deadline has passed (-n): it then goes by itself.
      const bool go_on =
          vanished ? FASTEN_TRY(outwait_vanished(revision - 1, etcd::excluding(place.kind), deadline)) !=
                         Outwaited::timed_out
                   : !deadline.passed() && FASTEN_TRY(watch(*wait, deadline));
      if (!go_on) {
        return false;
      }
    }
  }

  /// Takes the lowest slot below N that no other holder has: a claim key on
  /// this holder's lease, created in one transaction with the slot written
  /// to its queue key, and only while neither the claim exists nor the queue
  /// key has gone; it holds the slot once a read of the claims made after
  /// that finds its claim, and no slot holder that vanished. Waits for a
  /// claim to go if holders with a larger N have taken every slot below this
  /// one's N.
  Result<std::optional<int>> claim_slot(const Place& place, std::int64_t revision, const Deadline& deadline) {
    const auto claims_prefix = etcd::slot_claim_prefix(m_url.name);
    while (true) {
      if (m_keeper->lost()) {
        return lose_place();
      }
      const auto read = FASTEN_TRY(claims_once_none_vanished(deadline));
      if (!read) {
        if (deadline.passed()) {
          return std::optional<int>();
        }
        continue;
      }
      const auto& claims = *read;
      const auto choice = etcd::choose_slot(m_url.name, claims.kvs, slots(), place.lease);
      if (choice && choice->claimed) {
        return std::optional<int>(choice->slot);
      }
      if (choice) {
        const auto claim = etcd::slot_claim_key(m_url.name, choice->slot);
        auto claimed = m_client.put_if(
            {{.key = claim, .revision = 0}, {.key = place.key, .revision = revision}},
            {{.key = claim, .value = place.key, .lease = place.lease},
             {.key = place.key, .value = value_of(place, choice->slot), .lease = place.lease}});
        if (claimed && claimed.value()) {
          // Not in yet: a slot holder that claimed this slot after the
          // claims were read and vanished before this claim (its claim went
          // with its lease) may still run its command in it. The claims are
          // read again, with the count of marks, which its mark is still
          // among, and it is waited out first.
          continue;
        }
        if (!claimed) {
          FASTEN_TRY(retry_or_fail(claimed.error()));
        } else if (!FASTEN_TRY(still_queued(place))) {
          return lose_place();
        }
        continue; // another holder claimed it first, or etcd was away: look again
      }
      if (deadline.passed()) {
        return std::optional<int>();
      }
      const etcd::WatchRequest freed{.key = claims_prefix,
                                     .range_end = etcd::prefix_end(claims_prefix),
                                     .start_revision = claims.revision + 1};
      if (!FASTEN_TRY(watch(freed, deadline))) {
        return std::optional<int>();
      }
    }
  }

  /// The claims of the lock's slots, read once no slot holder that vanished
  /// may still run its command in its slot, whose claim went with it: one
  /// is waited out first (outwait_vanished), whenever it queued. Each slot
  /// key has a mark, made and deleted with it, so only a mark more than
  /// keys has the two read. std::nullopt to look again: etcd did not
  /// answer, or a vanished holder was waited out, or the deadline passed.
  Result<std::optional<etcd::RangeResponse>> claims_once_none_vanished(const Deadline& deadline) {
    const auto slot_keys = etcd::slot_prefix(m_url.name);
    auto read = m_client.ranges({prefix_range(etcd::slot_claim_prefix(m_url.name)), counted(slot_keys),
                                 counted(etcd::mark_key(m_url.name, slot_keys))});
    if (!read) {
      FASTEN_TRY(retry_or_fail(read.error()));
      return std::optional<etcd::RangeResponse>();
    }
    if (read->at(2).count != read->at(1).count &&
        FASTEN_TRY(outwait_vanished(0, etcd::slot_kind, deadline)) != Outwaited::none_vanished) {
      return std::optional<etcd::RangeResponse>();
    }
    return std::optional<etcd::RangeResponse>(std::move(read->at(0)));
  }

  /// Every key under `prefix`, keys only.
  static etcd::RangeRequest prefix_range(const std::string& prefix) {
    return {.key = prefix, .range_end = etcd::prefix_end(prefix), .keys_only = true};
  }

  /// How many keys are under `prefix`.
  static etcd::RangeRequest counted(const std::string& prefix) {
    return {.key = prefix, .range_end = etcd::prefix_end(prefix), .count_only = true};
  }

  /// What outwait_vanished came to.
  enum class Outwaited { none_vanished, waited, timed_out };

  /// Waits out the holders that vanished (queue.h) of the kinds `matter`
  /// says: reads the queue's keys and marks created up to `up_to` (0: all)
  /// at one revision and arms the marks of the vanished ones (arm), even
  /// past the deadline; then waits until those marks have gone (their lease
  /// ran out, or another waiter or their holder deleted them), or until the
  /// longest TTL they store has passed since they were read, when it deletes
  /// them itself, each only while its key is still gone. none_vanished when
  /// none had; waited once it has waited (or the read failed): the caller
  /// looks again; timed_out when the deadline passed first.
  Result<Outwaited> outwait_vanished(std::int64_t up_to, bool (*matter)(KeyKind), const Deadline& deadline) {
    // Not within -w, as arm is not: a waiter that found a vanished
    // holder's mark arms it even where -w passes meanwhile.
    auto read = [this, up_to] {
      const Uncapped uncapped(m_client);
      return m_client.ranges(keys_and_marks(up_to));
    }();
    if (!read) {
      FASTEN_TRY(retry_or_fail(read.error()));
      return deadline.passed() ? Outwaited::timed_out : Outwaited::waited; // look again
    }
    const auto gone = etcd::vanished(m_url.name, read->at(0).kvs, read->at(1).kvs, matter, m_options.ttl);
    if (gone.holders.empty()) {
      return Outwaited::none_vanished;
    }
    if (m_options.on_vanished) {
      m_options.on_vanished(gone.holders.front().key, gone.ttl, !deadline.passed());
    }
    arm(gone);
    const auto until = BootClock::now() + gone.ttl;
    auto next_look = BootClock::now() + k_outwait_look;
    while (BootClock::now() < until) {
      if (m_keeper->lost()) {
        return lose_place();
      }
      if (deadline.passed()) {
        return Outwaited::timed_out;
      }
      if (BootClock::now() >= next_look) {
        if (FASTEN_TRY(all_gone(gone, up_to))) {
          return Outwaited::waited;
        }
        next_look = BootClock::now() + k_outwait_look;
      }
      auto left = std::chrono::ceil<Milliseconds>(std::min(until, next_look) - BootClock::now());
      if (!deadline.is_forever()) {
        left = std::min(left, std::chrono::ceil<Milliseconds>(deadline.left()));
      }
      m_client.pause(std::clamp(left, Milliseconds(1), k_outwait_step));
    }
    for (const auto& holder : gone.holders) {
      (void)m_client.put_if({{.key = holder.key, .revision = 0},
                             {.key = holder.mark.key, .revision = holder.mark.create_revision}},
                            {}, {holder.mark.key});
    }
    return Outwaited::waited;
  }

  /// Arms the marks of the vanished holders ahead of a key created at
  /// `revision`, whose turn has come, that did not exclude it, as `keys` and
  /// `marks` (keys only) show them: a reader's, on a lock that only readers
  /// take, which no writer comes to wait out. Reads them again with their
  /// values first, only where one is on no lease yet (a read of keys alone
  /// shows the lease): every reader that comes while an armed mark waits to
  /// go would pay that read.
  void arm_unexcluding(std::int64_t revision, const std::vector<etcd::KeyValue>& keys,
                       const std::vector<etcd::KeyValue>& marks) {
    const auto every_kind = etcd::excluding(KeyKind::writer);
    const auto gone = etcd::vanished(m_url.name, keys, marks, every_kind, m_options.ttl);
    if (std::none_of(gone.holders.begin(), gone.holders.end(),
                     [](const auto& holder) { return holder.mark.lease == 0; })) {
      return;
    }
    const Uncapped uncapped(m_client);
    const auto read = m_client.ranges(keys_and_marks(revision - 1));
    if (read) {
      arm(etcd::vanished(m_url.name, read->at(0).kvs, read->at(1).kvs, every_kind, m_options.ttl));
    }
  }

  /// The queue's keys and its marks (with their values), created up to
  /// `up_to` (0: all), for one read at one revision.
  std::vector<etcd::RangeRequest> keys_and_marks(std::int64_t up_to) const {
    auto keys = prefix_range(etcd::queue_prefix(m_url.name));
    keys.max_create_revision = up_to;
    auto marks = prefix_range(etcd::mark_prefix(m_url.name));
    marks.max_create_revision = up_to;
    marks.keys_only = false;
    return {keys, marks};
  }

  /// Arms the marks of `gone` that nobody has armed yet: puts each on a
  /// lease of the longest TTL they store, which nobody renews, only while
  /// its key is still gone and the mark is the one read; etcd deletes it
  /// when that lease runs out. The lease is granted after the marks were
  /// read, after their keys went, so it runs out no sooner than a waiter's
  /// own wait would end. A lease granted shorter than asked (etcd never
  /// does) arms nothing. Failures arm nothing: the waiters' wait stands.
  /// Not within a waiter's -w, which may pass meanwhile, as at a release: a
  /// mark left unarmed keeps every taker that waits less than its TTL out.
  void arm(const etcd::Vanished& gone) {
    const auto unarmed = std::count_if(gone.holders.begin(), gone.holders.end(),
                                       [](const auto& holder) { return holder.mark.lease == 0; });
    if (unarmed == 0) {
      return;
    }
    const Uncapped uncapped(m_client);
    const auto lease = m_client.grant(gone.ttl);
    if (!lease || lease->ttl < gone.ttl) {
      return;
    }
    for (const auto& holder : gone.holders) {
      if (holder.mark.lease == 0) {
        (void)m_client.put_if({{.key = holder.key, .revision = 0},
                               {.key = holder.mark.key, .revision = holder.mark.create_revision}},
                              {{.key = holder.mark.key, .value = holder.mark.value, .lease = lease->id}});
      }
    }
  }

  /// Whether every mark of `gone` has gone (or was made again: another
  /// holder's), read with the queue up to `up_to`; false when etcd does not
  /// answer, and the wait goes on.
  Result<bool> all_gone(const etcd::Vanished& gone, std::int64_t up_to) {
    auto marks = prefix_range(etcd::mark_prefix(m_url.name));
    marks.max_create_revision = up_to;
    const auto read = m_client.range(marks);
    if (!read) {
      FASTEN_TRY(retry_or_fail(read.error()));
      return false;
    }
    return std::none_of(gone.holders.begin(), gone.holders.end(), [&](const auto& holder) {
      return std::any_of(read->kvs.begin(), read->kvs.end(), [&](const etcd::KeyValue& mark) {
        return mark.key == holder.mark.key && mark.create_revision == holder.mark.create_revision;
      });
    });
  }

  /// After a request that failed: an error if no retry can help (etcd
  /// refuses the user), else a pause before the next one. etcd may be away
  /// (restarting, electing): the lease keeper decides when that has lasted
  /// too long.
  Result<void> retry_or_fail(const Error& error) {
    if (error.kind() == ErrorKind::denied) {
      return error;
    }
    m_client.pause(k_retry_interval);
    return {};
  }

  /// Whether the holder's own key still exists, on its own lease; an error
  /// (having left the queue) when it has gone, revoked or deleted while it
  /// waited, or is on another lease (put there by hand, or an etcd that
  /// answers wrong). false when etcd did not answer: look again.
  Result<bool> still_queued(const Place& place) {
    auto mine = m_client.range({.key = place.key, .keys_only = true});
    if (!mine) {
      FASTEN_TRY(retry_or_fail(mine.error()));
      return false;
    }
    if (mine->kvs.empty() || mine->kvs.front().lease != place.lease) {
      return lose_place();
    }
    return true;
  }

  /// Watches until `request` sees a change, for at most the time left and
  /// the re-check; false when the deadline has passed. A watch that failed
  /// (its member died, or refuses it) returns after k_retry_interval: the
  /// caller's look again moves on to a member that answers.
  Result<bool> watch(const etcd::WatchRequest& request, const Deadline& deadline) {
    auto woken = m_client.wait_for_change(request, watch_timeout(deadline, m_options.recheck));
    if (woken && woken.value() == etcd::WatchEnd::timed_out && deadline.passed()) {
      return false;
    }
    if (!woken) {
      m_client.pause(k_retry_interval);
    }
    return true;
  }

  Error lose_place() {
    const std::string reason = m_keeper->lost()      ? m_keeper->lost_reason()
                               : m_keeper->expired() ? "its lease may have run out before it was renewed"
                                                     : "its key was deleted, or is on another lease";
    give_up();
    return Error(ErrorKind::lost, "lost its place in the queue for the lock", m_name, reason);
  }

  /// Leaves the queue, or the lock.
  void give_up() noexcept {
    if (!m_keeper) {
      return;
    }
    (void)leave();
    m_held.reset();
  }

  /// Leaves in order: deletes the mark with the key, in one transaction, so
  /// that no one takes the holder for one that vanished (queue.h), and then
  /// revokes the lease, which deletes the rest (a slot's claim). Within one
  /// request's time, or a second once the lease is lost anyway; the result
  /// is the revoke's.
  Result<void> leave() {
    const bool lost = m_keeper->lost();
    etcd::let_go_of_lease(m_keeper->id());
    m_keeper->stop();
    m_client.set_abort_flag(nullptr);
    auto revoked = [this, lost] {
      // Not within a waiter's -w, which may have passed: a mark left behind
      // would keep the next holder waiting.
      const Uncapped uncapped(m_client);
      const etcd::Deadline deadline(lost ? k_lost_revoke_timeout : etcd::Timeouts{}.request);
      if (m_place) {
        (void)m_client.put_if({}, {}, {m_place->mark, m_place->key}, deadline);
      }
      return m_client.revoke(m_keeper->id(), deadline);
    }();
    m_keeper.reset();
    m_place.reset();
    return revoked;
  }

  std::string m_name;
  EtcdUrl m_url;
  std::optional<int> m_slots;
  EtcdOptions m_options;
  etcd::Client m_client;
  std::unique_ptr<LeaseKeeper> m_keeper;
  /// The key (and mark) on m_keeper's lease, while there is one.
  std::optional<Place> m_place;
  std::optional<LockMode> m_held;
};

} // namespace

Result<std::unique_ptr<Lock>> open_etcd_lock(const std::string& name, const BackendOptions& options,
                                             const EtcdOptions& etcd) {
  auto url = FASTEN_TRY(parse_etcd_url(name, etcd.default_endpoints));
  return std::unique_ptr<Lock>(std::make_unique<EtcdLock>(name, std::move(url), options, etcd));
}

Result<LockStatus> query_etcd_status(const std::string& name, const EtcdOptions& etcd) {
  const auto url = FASTEN_TRY(parse_etcd_url(name, etcd.default_endpoints));
  etcd::Client client(url.endpoints);
  return EtcdLock::status_of(client, url.name, etcd.ttl);
}

Backend etcd_backend(EtcdOptions etcd) {
  return Backend{
      .open =
          [etcd](const std::string& name, const BackendOptions& options) {
            return is_etcd_url(name) ? open_etcd_lock(name, options, etcd)
                                     : file_backend().open(name, options);
          },
      .status =
          [etcd](const std::string& name, const BackendOptions& options) {
            return is_etcd_url(name) ? query_etcd_status(name, etcd) : file_backend().status(name, options);
          },
  };
}

} // namespace fasten
