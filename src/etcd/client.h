#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "etcd/http.h"
#include "lock/deadline.h"
#include "lock/linux-clock.h"
#include "lock/result.h"

/// A small client for etcd's v3 JSON gateway (`POST /v3/...`, which etcd 3.4
/// and later serve on the client port): leases, ranges, a transaction and a
/// watch, over HTTP/1.1 (src/etcd/http.h). No generated code and no gRPC: the gateway takes and
/// gives JSON, with keys and values in base64 and 64-bit numbers as strings.
///
/// Every request has one deadline, on CLOCK_BOOTTIME, for all the endpoints
/// it tries, connecting included. A request that cannot reach an endpoint
/// (refused, timed out, or etcd answers 503: no leader) is tried on the next
/// one; the one that answered is tried first from then on, on the connection
/// kept open to it. An endpoint gets
/// an equal share of the time left for those not yet tried, so that one that
/// hangs leaves time for the others, and with several endpoints at most a
/// second in the first round of tries, twice that in each next one: a
/// request goes round again while a try was cut short so. A Client is used
/// by one thread at a time.
namespace fasten::etcd {

using Json = nlohmann::json;
using Milliseconds = std::chrono::milliseconds;

[[nodiscard]] std::string base64_encode(std::string_view bytes);
/// std::nullopt for text that is not base64.
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text);

/// The end of the range of keys that start with `prefix`: the prefix with its
/// last byte below 0xff incremented (clientv3.GetPrefixRangeEnd).
[[nodiscard]] std::string prefix_end(std::string_view prefix);

/// A 64-bit field of a gateway answer: a string of digits, or a number, or
/// left out when it is zero; 0 for anything else (another type, other text).
[[nodiscard]] std::int64_t int_field(const Json& object, const char* name);

/// CLOCK_BOOTTIME: like CLOCK_MONOTONIC, but it runs on while the machine is
/// suspended, as a lease's TTL does on the etcd server.
using BootClock = LinuxClock<CLOCK_BOOTTIME>;

/// When a request gives up: one instant on BootClock, for every endpoint it
/// tries. Deadline(timeout) is that long from now, Deadline::at(instant) at
/// the instant.
using Deadline = BasicDeadline<BootClock>;

struct KeyValue {
  std::string key{};
  std::string value{};
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t lease = 0;
};

enum class Order { none, oldest_first, newest_first };

struct RangeRequest {
  std::string key{};
  /// Empty for the one key `key`; prefix_end(key) for every key under it.
  std::string range_end{};
  /// Only keys created at or before this revision; 0 for no bound.
  std::int64_t max_create_revision = 0;
  /// By create revision.
  Order order = Order::none;
  std::int64_t limit = 0;
  bool keys_only = false;
  /// Only how many keys there are (RangeResponse::count), none of them.
  bool count_only = false;
};

struct RangeResponse {
  /// The store's revision when the range was read: a watch from the next one
  /// misses nothing that happened after it.
  std::int64_t revision = 0;
  /// The raft term of the member that answered (0 if it did not say).
  std::int64_t raft_term = 0;
  std::vector<KeyValue> kvs;
  /// How many keys are in the range, whatever the limit.
  std::int64_t count = 0;
};

/// The bodies of the requests, as the gateway reads them.
[[nodiscard]] Json range_body(const RangeRequest& request);
struct Put {
  std::string key;
  std::string value;
  /// 0 for a key on no lease.
  std::int64_t lease = 0;
};

/// One transaction that creates `key` with `value` under `lease` unless it
/// exists, and reads it back otherwise (the create_revision == 0 compare of
/// clientv3/concurrency): a retried request cannot create it twice.
/// `also` is made with it (the holder's mark, queue.h). The transaction
/// that makes the key then reads `looks` (the queue with the new key in it,
/// at the key's own revision): one request fewer than a read of its own.
[[nodiscard]] Json create_key_body(const std::string& key, const std::string& value, std::int64_t lease,
                                   const std::vector<Put>& also = {},
                                   const std::vector<RangeRequest>& looks = {});

/// A key as its holder made it: its create revision and lease.
struct OwnKey {
  std::string key;
  std::int64_t create_revision = 0;
  std::int64_t lease = 0;
};

/// One transaction that reads `looks` only while `own` is there as it was
/// made (the same create revision, on the same lease), and nothing
/// otherwise: a look at the queue and a check of the holder's own place in
/// one request, at one revision.
[[nodiscard]] Json range_if_body(const OwnKey& own, const std::vector<RangeRequest>& looks);
/// One transaction that reads every range of `looks`, at one revision.
[[nodiscard]] Json ranges_body(const std::vector<RangeRequest>& looks);

/// One key's create revision, for a transaction's compare: 0 for a key that
/// does not exist.
struct CreateRevisionIs {
  std::string key;
  std::int64_t revision = 0;
};

/// One transaction that makes every put and deletes every key of `deletes`
/// if every compare holds, and nothing otherwise.
[[nodiscard]] Json put_if_body(const std::vector<CreateRevisionIs>& compares, const std::vector<Put>& puts,
                               const std::vector<std::string>& deletes = {});

struct WatchRequest {
  std::string key{};
  /// Empty for the one key `key`; prefix_end(key) for every key under it.
  std::string range_end{};
  /// The first revision whose events count.
  std::int64_t start_revision = 0;
  /// Whether a put ends the wait as a deletion does.
  bool puts_too = false;
};

[[nodiscard]] Json watch_body(const WatchRequest& request);

[[nodiscard]] RangeResponse parse_range(const Json& answer);

/// How a watch ended.
enum class WatchEnd {
  /// A key was deleted (or put, if the watch asked for puts too).
  changed,
  timed_out,
  /// The abort flag was raised.
  aborted,
  /// The watch ended without a deletion (etcd cancelled it, compacted past
  /// it, or closed the stream): look again.
  interrupted,
};

struct Lease {
  std::int64_t id = 0;
  std::chrono::seconds ttl{0};
};

/// A renewal that etcd answered with a TTL.
struct Renewed {
  std::chrono::seconds ttl{0};
  /// The raft term of the member that answered (0 if it did not say): a
  /// leader deposed while it was stopped answers from its old term.
  std::int64_t raft_term = 0;
};

/// etcd's answers are read whole into memory: a larger one is refused (the
/// range of a queue of thousands of waiters is far below it).
constexpr std::size_t k_max_answer_bytes = std::size_t{8} << 20;
/// And one nested deeper than this (etcd's are a few levels deep), whose
/// reading and printing would recurse that deep.
constexpr int k_max_answer_depth = 64;

/// An answer of etcd's gateway: its HTTP status and its JSON body.
struct Reply {
  long http_status = 0;
  Json body;
};

// How the Client reads etcd's answers, as functions of the answer alone, so
// that the unit tests and the fuzzer (tests/fuzz/fuzz-etcd-answer.cc) reach
// them without an etcd. Each fails closed: an answer that is not one etcd
// gives is an ErrorKind::unavailable error, never a lease, a renewal, a key
// or a change that etcd did not confirm. `endpoint` (or `key`) is what an
// error names.

/// The body `answer` that `endpoint` gave with `http_status`, as JSON: an
/// error if it is not JSON, or nested too deep.
[[nodiscard]] Result<Reply> read_reply(long http_status, const std::string& answer,
                                       const std::string& endpoint);
/// The body of a reply to `path` that etcd did not refuse: an
/// ErrorKind::denied error for a refused user or role (`user`, empty for
/// none, is named), an ErrorKind::unavailable one for any other status
/// than 200.
[[nodiscard]] Result<Json> accepted_answer(const char* path, Reply reply, const std::string& user,
                                           const std::string& endpoint);
/// /v3/lease/grant's answer: a lease with an ID and a TTL above 0.
[[nodiscard]] Result<Lease> granted_lease(const Json& answer, const std::string& endpoint);
/// /v3/lease/keepalive's answer: the TTL renewed and the term it was
/// renewed in, or std::nullopt when etcd no longer has the lease (it answers
/// with no TTL, or 0).
[[nodiscard]] Result<std::optional<Renewed>> renewed_ttl(const Json& answer, const std::string& endpoint);
/// /v3/lease/revoke's reply: revoked, or gone already (gRPC's NotFound).
[[nodiscard]] Result<void> lease_revoked(const Reply& reply, const std::string& endpoint);
/// create_key_body's answer: the create revision (above 0) of `key`, made
/// by this transaction or by an earlier try of it.
[[nodiscard]] Result<std::int64_t> created_revision(const Json& answer, const std::string& key);
/// Reads of one transaction, in the order asked.
using Looks = std::vector<RangeResponse>;

/// The reads of create_key_body's `looks` (`puts` puts before them) when
/// that transaction made `key` on `lease`, without the keys created at the
/// key's revision or later (the key itself, and what it made with it): what
/// reads with max_create_revision one below would have found. The first
/// must hold the key. std::nullopt when the transaction did not make the
/// key (an earlier try had), or its answer holds no such reads, or a first
/// one without the key at the answer's revision on `lease`: the caller
/// reads on its own.
[[nodiscard]] std::optional<Looks> looked_at_creation(const Json& answer, const std::string& key,
                                                      std::int64_t lease, std::size_t puts, std::size_t looks);
/// range_if_body's answer: the `looks` reads, or std::nullopt when the
/// compares did not hold (the key was deleted, made again, or is on another
/// lease); an error for an answer whose compares held but that holds fewer
/// reads.
[[nodiscard]] Result<std::optional<Looks>> range_if_answer(const Json& answer, const std::string& key,
                                                           std::size_t looks = 1);
/// put_if_body's answer: whether the puts were made.
[[nodiscard]] bool puts_made(const Json& answer);

/// The watch stream of /v3/watch, one JSON message a line, read as it
/// arrives.
class WatchStream {
public:
  explicit WatchStream(bool puts_too) : m_puts_too(puts_too) {}
  /// Reads the next bytes of the stream; how the watch ended, once a
  /// message says (a line that is not a watch response, or one longer than
  /// k_max_answer_bytes, ends it as interrupted).
  std::optional<WatchEnd> read(std::string_view data);
  std::optional<WatchEnd> end() const noexcept { return m_end; }

private:
  bool m_puts_too;
  std::string m_pending;
  std::optional<WatchEnd> m_end;
};

/// How to reach a secured etcd, as etcdctl reads it from its environment.
/// Files apply to https:// endpoints; the user to every endpoint.
struct Security {
  /// ETCDCTL_CACERT: the CA that signed the server's certificate; empty for
  /// the system's CAs.
  std::string ca_file;
  /// ETCDCTL_CERT and ETCDCTL_KEY: a client certificate and its key.
  std::string cert_file;
  std::string key_file;
  /// ETCDCTL_INSECURE_SKIP_TLS_VERIFY: do not check the server's certificate.
  bool skip_verify = false;
  /// ETCDCTL_USER, `name` or `name:password`, and ETCDCTL_PASSWORD: etcd's
  /// user authentication. Never printed.
  std::string user;
  std::string password;

  /// From etcdctl's variables.
  [[nodiscard]] static Security from_environment();
  /// An ErrorKind::denied error for a client certificate without its key,
  /// or a key without its certificate, which etcdctl refuses too.
  [[nodiscard]] Result<void> check() const;
};

struct Timeouts {
  /// To open a connection to one endpoint.
  Milliseconds connect{2000};
  /// For a whole request, unless the caller asks for less.
  Milliseconds request{5000};
};

class Client {
public:
  explicit Client(std::vector<std::string> endpoints, Security security = Security::from_environment(),
                  Timeouts timeouts = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// A raised flag makes a request in progress give up (the transport looks
  /// at it every http::k_abort_check) and keeps new ones from starting.
  void set_abort_flag(const std::atomic<bool>* abort) noexcept { m_abort = abort; }
  /// Every wait of this client's requests acts on `interrupt` (null: none)
  /// while it waits (http::Interrupt), and so does pause.
  void set_interrupt(const http::Interrupt* interrupt) noexcept { m_interrupt = interrupt; }
  /// Every request of this client ends by `cap` too, if it is sooner than
  /// its own deadline (std::nullopt: no cap): a waiter's -w.
  void cap_requests_at(std::optional<BootClock::time_point> cap) noexcept { m_cap = cap; }
  std::optional<BootClock::time_point> requests_capped_at() const noexcept { return m_cap; }
  /// Waits `pause` before a request is tried again, acting on the interrupt.
  void pause(Milliseconds pause) const { http::pause(pause, m_interrupt); }

  [[nodiscard]] Result<Lease> grant(std::chrono::seconds ttl);
  /// Renews the lease once; std::nullopt when etcd no longer has it (it
  /// expired or was revoked).
  [[nodiscard]] Result<std::optional<Renewed>> keep_alive(std::int64_t lease, Deadline deadline);
  /// Ends the lease and deletes its keys. A lease that is gone already is
  /// not an error. At most the request timeout.
  [[nodiscard]] Result<void> revoke(std::int64_t lease, Deadline deadline);
  /// With the default request timeout unless `deadline` is given.
  [[nodiscard]] Result<RangeResponse> range(const RangeRequest& request,
                                            std::optional<Deadline> deadline = std::nullopt);
  /// What create_key made: the key's create revision, and the reads of
  /// `looks` at it (looked_at_creation), if this try made the key.
  struct Created {
    std::int64_t revision = 0;
    std::optional<Looks> looks;
  };
  [[nodiscard]] Result<Created> create_key(const std::string& key, const std::string& value,
                                           std::int64_t lease, const std::vector<Put>& also = {},
                                           const std::vector<RangeRequest>& looks = {});
  /// Reads `looks` if `own` is still there as made (range_if_body);
  /// std::nullopt when it is not.
  [[nodiscard]] Result<std::optional<Looks>> range_if(const OwnKey& own, const std::vector<RangeRequest>& looks);
  /// Reads every range of `looks` at one revision (ranges_body).
  [[nodiscard]] Result<Looks> ranges(const std::vector<RangeRequest>& looks);
  /// Makes `puts` and `deletes` if `compares` hold (put_if_body); whether it
  /// did. A retried request may find its own first try done, and say false.
  /// With the default request timeout unless `deadline` is given.
  [[nodiscard]] Result<bool> put_if(const std::vector<CreateRevisionIs>& compares, const std::vector<Put>& puts,
                                    const std::vector<std::string>& deletes = {},
                                    std::optional<Deadline> deadline = std::nullopt);
  /// Watches the keys of `request` until one is deleted (or put), for at
  /// most `timeout` (more than 0). Uses the endpoint that answered last.
  [[nodiscard]] Result<WatchEnd> wait_for_change(const WatchRequest& request, Milliseconds timeout);

  /// The endpoints, comma-separated, for messages.
  std::string endpoints() const;

  /// When the last request that got an answer was sent to the endpoint that
  /// gave it: etcd cannot have granted or renewed a lease before then, while
  /// time spent on endpoints that did not answer happened before it.
  BootClock::time_point answered_try_sent_at() const noexcept { return m_answered_try_sent_at; }
  /// Which endpoint answered last (its index), the one tried first.
  std::size_t current_endpoint() const noexcept { return m_current; }
  /// Has requests try endpoint `index` first, as another client learnt.
  void start_with(std::size_t index) noexcept { m_current = index < m_endpoints.size() ? index : 0; }

private:
  /// POSTs `body` to `path` on each endpoint in turn until one answers or
  /// the deadline passes.
  [[nodiscard]] Result<Reply> call(const char* path, const Json& body, Deadline deadline);
  /// One try of call() on one endpoint, until `try_deadline`; an error that
  /// names why the endpoint could not answer goes to `failures`.
  [[nodiscard]] std::optional<Result<Reply>> try_endpoint(std::size_t index, const char* path,
                                                          const std::string& body,
                                                          BootClock::time_point try_deadline,
                                                          std::string& failures);
  /// call() as the user, if there is one: authenticates first, and again
  /// once etcd says the token has expired; a refusal of the user or of its
  /// role is an ErrorKind::denied error.
  [[nodiscard]] Result<Reply> call_as_user(const char* path, const Json& body, Deadline deadline);
  /// Gets a token for the user (/v3/auth/authenticate).
  [[nodiscard]] Result<void> authenticate(Deadline deadline);
  [[nodiscard]] Result<Json> call_ok(const char* path, const Json& body, Deadline deadline);
  /// etcd's gateway refused the client certificate because it has a common
  /// name (authentication on): what to use instead.
  [[nodiscard]] Error refused_common_name() const;
  /// An error for a client certificate without its key, or the other way.
  [[nodiscard]] Result<void> usable() const;

  std::vector<std::string> m_endpoints;
  Security m_security;
  /// The user's token, sent as "Authorization" with every request; empty
  /// until authenticated.
  std::string m_token;
  std::size_t m_current = 0;
  BootClock::time_point m_answered_try_sent_at{};
  Timeouts m_timeouts;
  const std::atomic<bool>* m_abort = nullptr;
  const http::Interrupt* m_interrupt = nullptr;
  std::optional<BootClock::time_point> m_cap;
  /// Requests go over one connection, kept open to the endpoint that
  /// answered; a watch, which holds its connection for as long as it
  /// lasts, over another.
  http::Connection m_connection;
  http::Connection m_watch_connection;
};

} // namespace fasten::etcd
