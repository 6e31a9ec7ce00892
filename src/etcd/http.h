#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "lock/file-handle.h"
#include "lock/linux-clock.h"
#include "lock/result.h"

/// The transport under the etcd client: HTTP/1.1 over one socket, with
/// OpenSSL for https:// endpoints, as much of it as etcd's JSON gateway
/// needs (a POST with a JSON body, an answer with a Content-Length or in
/// chunks). Every step (the name lookup, connecting, the TLS handshake,
/// sending, each byte of the answer) ends by one deadline on CLOCK_BOOTTIME
/// or when an abort flag is raised, which it looks at at least every
/// k_abort_check. A connection is kept open for the next request to the
/// same endpoint.
namespace fasten::etcd::http {

using BootClock = LinuxClock<CLOCK_BOOTTIME>;

/// How often a wait looks at the abort flag.
constexpr std::chrono::milliseconds k_abort_check{200};
/// The most an answer's status line and headers may take.
constexpr std::size_t k_max_head_bytes = 64 << 10;

/// How to reach https:// endpoints.
struct TlsSettings {
  /// The CA that signed the server's certificate; empty for the system's.
  std::string ca_file;
  /// A client certificate and its key, both or neither.
  std::string cert_file;
  std::string key_file;
  /// Do not check the server's certificate or name.
  bool skip_verify = false;
};

/// An endpoint as the etcd URL gives it ("host:port", "[v6]:port",
/// "https://host:port"), taken apart.
struct Address {
  std::string host;
  std::string port;
  bool tls = false;
};
[[nodiscard]] Address address_of(std::string_view endpoint);

/// An answer's status line and the headers that say how its body comes.
struct Head {
  int status = 0;
  /// Content-Length, when given.
  std::optional<std::size_t> content_length;
  bool chunked = false;
  /// The server closes the connection after this answer.
  bool close = false;
};
/// Reads a head, up to and without its blank line; std::nullopt for one that
/// is not HTTP/1.x's.
[[nodiscard]] std::optional<Head> parse_head(std::string_view text);

/// The size line of a chunk ("1a3;ext"); std::nullopt for one that is not.
[[nodiscard]] std::optional<std::size_t> parse_chunk_size(std::string_view line);

/// What a wait watches besides its socket: `descriptor`, and once that is
/// readable, `act` is called in the middle of the wait (a signal to act on,
/// which ends the process); the wait goes on if it returns.
struct Interrupt {
  int descriptor = -1;
  std::function<void()> act;
};

/// When an exchange gives up, and whether it did.
struct Limits {
  BootClock::time_point deadline = BootClock::time_point::max();
  /// Raised by another thread: give up at once.
  const std::atomic<bool>* abort = nullptr;
  /// Acted on while the exchange waits, or null.
  const Interrupt* interrupt = nullptr;
  /// Set by the wait that gave up.
  bool timed_out = false;
  bool aborted = false;
};

/// Waits `pause`, acting on `interrupt` (null: none) meanwhile as an
/// exchange would.
void pause(std::chrono::milliseconds pause, const Interrupt* interrupt);

struct Request {
  const std::string& endpoint;
  std::string_view path;
  std::string_view body;
  /// etcd's auth token, sent as "Authorization"; empty for none.
  std::string_view token;
};

/// Takes the body piece by piece; false to read no more of it.
using Sink = std::function<bool(std::string_view)>;

class TlsContext;

/// One connection at a time to one endpoint, kept open between requests to
/// it. Used by one thread at a time.
class Connection {
public:
  explicit Connection(TlsSettings tls);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// POSTs the request and reads the answer's head, then gives the body to
  /// `sink` until it ends or `sink` says stop. The status; an
  /// ErrorKind::unavailable error, naming the endpoint, when the endpoint
  /// cannot be reached, breaks the exchange, or gives no whole answer by
  /// `limits.deadline` (connecting ends by `connect_by` too). A connection
  /// kept from an earlier request that the server has closed meanwhile is
  /// opened anew, once.
  [[nodiscard]] Result<int> exchange(const Request& request, Limits& limits,
                                     BootClock::time_point connect_by, const Sink& sink);

  /// Closes the connection; the next exchange opens one.
  void close() noexcept;

private:
  class Stream;
  [[nodiscard]] Result<void> open(const std::string& endpoint, Limits& limits,
                                  BootClock::time_point connect_by);
  [[nodiscard]] Result<int> send_and_read(const Request& request, Limits& limits, const Sink& sink,
                                          bool* nothing_came);

  TlsSettings m_settings;
  std::unique_ptr<TlsContext> m_tls;
  std::unique_ptr<Stream> m_stream;
  std::string m_endpoint;
};

} // namespace fasten::etcd::http
