#include "etcd/http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>
#include <vector>

namespace fasten::etcd::http {

namespace {

using std::chrono::milliseconds;

Error failure(const std::string& endpoint, std::string why, int sys_errno = 0) {
  if (sys_errno != 0) {
    why += ": " + system_message(sys_errno);
  }
  return Error(ErrorKind::unavailable, "cannot reach etcd", endpoint, std::move(why));
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

template <typename Number> std::optional<Number> number_of(std::string_view text, int base = 10) {
  Number value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

/// Waits until `fd` is ready for `events`, the deadline passes or the abort
/// flag is raised, looking at the flag every k_abort_check.
Result<void> wait_ready(int fd, short events, Limits& limits, const std::string& endpoint) {
  for (;;) {
    if (limits.abort != nullptr && limits.abort->load()) {
      limits.aborted = true;
      return failure(endpoint, "interrupted");
    }
    const auto left = limits.deadline - BootClock::now();
    if (left <= BootClock::duration::zero()) {
      limits.timed_out = true;
      return failure(endpoint, "no answer before the deadline");
    }
    const auto slice = std::min(std::chrono::ceil<milliseconds>(left), k_abort_check);
    const bool interruptible = limits.interrupt != nullptr && limits.interrupt->descriptor >= 0;
    std::array<pollfd, 2> ready{
        {{.fd = fd, .events = events, .revents = 0},
         {.fd = interruptible ? limits.interrupt->descriptor : -1, .events = POLLIN, .revents = 0}}};
    const int count = ::poll(ready.data(), ready.size(), static_cast<int>(slice.count()));
    if (count > 0 && (ready[1].revents & POLLIN) != 0) {
      limits.interrupt->act();
    }
    if (count > 0 && ready[0].revents != 0) {
      return {};
    }
    if (count < 0 && errno != EINTR) {
      return failure(endpoint, "poll", errno);
    }
  }
}

} // namespace

void pause(milliseconds pause, const Interrupt* interrupt) {
  const auto until = BootClock::now() + pause;
  if (interrupt == nullptr || interrupt->descriptor < 0) {
    std::this_thread::sleep_until(until);
    return;
  }
  for (auto left = until - BootClock::now(); left > BootClock::duration::zero();
       left = until - BootClock::now()) {
    pollfd ready{.fd = interrupt->descriptor, .events = POLLIN, .revents = 0};
    if (::poll(&ready, 1, static_cast<int>(std::chrono::ceil<milliseconds>(left).count())) > 0) {
      interrupt->act();
    }
  }
}

Address address_of(std::string_view endpoint) {
  Address address;
  if (endpoint.starts_with("https://")) {
    address.tls = true;
    endpoint.remove_prefix(8);
  } else if (endpoint.starts_with("http://")) {
    endpoint.remove_prefix(7);
  }
  const auto colon = endpoint.rfind(':');
  const bool has_port = colon != std::string_view::npos && endpoint.find(']', colon) == std::string_view::npos;
  address.port = has_port ? std::string(endpoint.substr(colon + 1)) : "2379";
  auto host = has_port ? endpoint.substr(0, colon) : endpoint;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  address.host = std::string(host);
  return address;
}

std::optional<Head> parse_head(std::string_view text) {
  auto end_of_line = text.find('\n');
  const auto status_line = trimmed(text.substr(0, end_of_line));
  // "HTTP/1.1 200 OK"
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12 || status_line[8] != ' ') {
    return std::nullopt;
  }
  Head head;
  const auto status = number_of<int>(status_line.substr(9, 3));
  if (!status || *status < 100 || (status_line.size() > 12 && status_line[12] != ' ')) {
    return std::nullopt;
  }
  head.status = *status;
  head.close = status_line[7] == '0'; // HTTP/1.0 closes unless it says keep-alive
  while (end_of_line != std::string_view::npos) {
    text.remove_prefix(end_of_line + 1);
    end_of_line = text.find('\n');
    const auto line = trimmed(text.substr(0, end_of_line));
    const auto colon = line.find(':');
    if (line.empty()) {
      continue;
    }
    if (colon == std::string_view::npos) {
      return std::nullopt;
    }
    const auto name = line.substr(0, colon);
    const auto value = trimmed(line.substr(colon + 1));
    if (equal_ignoring_case(name, "Content-Length")) {
      head.content_length = number_of<std::size_t>(value);
      if (!head.content_length) {
        return std::nullopt;
      }
    } else if (equal_ignoring_case(name, "Transfer-Encoding")) {
      head.chunked = equal_ignoring_case(value, "chunked");
    } else if (equal_ignoring_case(name, "Connection")) {
      head.close = equal_ignoring_case(value, "close");
    }
  }
  return head;
}

std::optional<std::size_t> parse_chunk_size(std::string_view line) {
  line = trimmed(line.substr(0, line.find(';')));
  // At most 15 hex digits: a size that fits, and far more than etcd sends.
  if (line.size() > 15) {
    return std::nullopt;
  }
  return number_of<std::size_t>(line, 16);
}

// --- TLS ---------------------------------------------------------------------

/// OpenSSL's most recent error, as words, emptying its queue.
std::string tls_error_text() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    text = buffer; // the last one says most
  }
  return text;
}

/// The SSL_CTX for https:// endpoints, made when one is first needed: a
/// plain http:// client never loads the CAs.
class TlsContext {
public:
  explicit TlsContext(SSL_CTX* context) : m_context(context) {}
  ~TlsContext() { SSL_CTX_free(m_context); }
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  SSL_CTX* get() const noexcept { return m_context; }

  static Result<std::unique_ptr<TlsContext>> make(const TlsSettings& settings, const std::string& endpoint) {
    auto context = std::make_unique<TlsContext>(SSL_CTX_new(TLS_client_method()));
    SSL_CTX* ssl = context->get();
    if (ssl == nullptr) {
      return failure(endpoint, "TLS: " + tls_error_text());
    }
    SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    SSL_CTX_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
    if (!settings.skip_verify) {
      SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
      const bool loaded = settings.ca_file.empty()
                              ? SSL_CTX_set_default_verify_paths(ssl) == 1
                              : SSL_CTX_load_verify_locations(ssl, settings.ca_file.c_str(), nullptr) == 1;
      if (!loaded) {
        return failure(endpoint, "TLS: cannot read the CA file " + settings.ca_file + ": " + tls_error_text());
      }
    }
    if (!settings.cert_file.empty() &&
        (SSL_CTX_use_certificate_chain_file(ssl, settings.cert_file.c_str()) != 1 ||
         SSL_CTX_use_PrivateKey_file(ssl, settings.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
         SSL_CTX_check_private_key(ssl) != 1)) {
      return failure(endpoint, "TLS: cannot use the client certificate " + settings.cert_file + " and key " +
                                   settings.key_file + ": " + tls_error_text());
    }
    return context;
  }

private:
  SSL_CTX* m_context;
};

namespace {

struct SslFree {
  void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
};
using SslPointer = std::unique_ptr<SSL, SslFree>;

/// Why a TLS call failed, for a message.
std::string tls_failure(SSL* ssl, int result, bool handshake) {
  std::string why;
  if (handshake && SSL_get_verify_result(ssl) != X509_V_OK) {
    why = std::string("certificate verify failed: ") +
          X509_verify_cert_error_string(SSL_get_verify_result(ssl));
    ERR_clear_error();
  } else {
    const int error = SSL_get_error(ssl, result);
    why = tls_error_text();
    if (why.empty()) {
      why = error == SSL_ERROR_SYSCALL && errno != 0 ? system_message(errno) : "the connection was closed";
    }
  }
  return "TLS: " + why;
}

} // namespace

// --- one connection -------------------------------------------------------------

/// A socket, with TLS over it or not, and the bytes read from it that no one
/// has taken yet.
class Connection::Stream {
public:
  Stream(FileHandle socket, std::string endpoint) : m_socket(std::move(socket)), m_endpoint(std::move(endpoint)) {}

  Result<void> start_tls(SSL_CTX* context, const Address& address, bool verify, Limits& limits) {
    m_ssl.reset(SSL_new(context));
    if (!m_ssl || SSL_set_fd(m_ssl.get(), m_socket.get()) != 1) {
      return failure(m_endpoint, "TLS: " + tls_error_text());
    }
    in6_addr ip{};
    const bool is_ip = inet_pton(AF_INET, address.host.c_str(), &ip) == 1 ||
                       inet_pton(AF_INET6, address.host.c_str(), &ip) == 1;
    if (!is_ip) {
      SSL_set_tlsext_host_name(m_ssl.get(), address.host.c_str());
    }
    if (verify) {
      // The certificate must name the host as the endpoint does: a DNS name,
      // or an IP address among its subject alternative names.
      X509_VERIFY_PARAM* param = SSL_get0_param(m_ssl.get());
      const int named = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, address.host.c_str())
                              : X509_VERIFY_PARAM_set1_host(param, address.host.c_str(), 0);
      if (named != 1) {
        return failure(m_endpoint, "TLS: cannot check the name " + address.host);
      }
    }
    for (;;) {
      const int result = SSL_connect(m_ssl.get());
      if (result == 1) {
        return {};
      }
      FASTEN_TRY(wait_for_tls(result, limits, true));
    }
  }

  Result<void> write_all(std::string_view data, Limits& limits) {
    while (!data.empty()) {
      long written;
      if (m_ssl) {
        // SIGPIPE, should the server have gone, is ignored by the program
        // (run::end_on_termination_signals): a failed write is an error.
        written = SSL_write(m_ssl.get(), data.data(), static_cast<int>(std::min<std::size_t>(data.size(), 1 << 30)));
        if (written <= 0) {
          FASTEN_TRY(wait_for_tls(static_cast<int>(written), limits, false));
          continue;
        }
      } else {
        written = ::send(m_socket.get(), data.data(), data.size(), MSG_NOSIGNAL);
        if (written < 0) {
          if (errno == EAGAIN || errno == EINTR) {
            FASTEN_TRY(wait_ready(m_socket.get(), POLLOUT, limits, m_endpoint));
            continue;
          }
          return failure(m_endpoint, "sending the request", errno);
        }
      }
      data.remove_prefix(static_cast<std::size_t>(written));
    }
    return {};
  }

  /// More bytes into the buffer; false at the end of the stream.
  Result<bool> fill(Limits& limits) {
    char chunk[16384];
    for (;;) {
      long got;
      if (m_ssl) {
        got = SSL_read(m_ssl.get(), chunk, sizeof chunk);
        if (got <= 0) {
          if (SSL_get_error(m_ssl.get(), static_cast<int>(got)) == SSL_ERROR_ZERO_RETURN) {
            return false;
          }
          FASTEN_TRY(wait_for_tls(static_cast<int>(got), limits, false));
          continue;
        }
      } else {
        got = ::recv(m_socket.get(), chunk, sizeof chunk, 0);
        if (got < 0) {
          if (errno == EAGAIN || errno == EINTR) {
            FASTEN_TRY(wait_ready(m_socket.get(), POLLIN, limits, m_endpoint));
            continue;
          }
          return failure(m_endpoint, "reading the answer", errno);
        }
        if (got == 0) {
          return false;
        }
      }
      m_buffer.append(chunk, static_cast<std::size_t>(got));
      return true;
    }
  }

  /// The next line, without its "\r\n"; an error past `limit` bytes or at
  /// the end of the stream.
  Result<std::string> line(Limits& limits, std::size_t limit) {
    std::size_t newline;
    while ((newline = m_buffer.find('\n', m_start)) == std::string::npos) {
      if (m_buffer.size() - m_start > limit) {
        return failure(m_endpoint, "etcd's answer has a line longer than " + std::to_string(limit) + " bytes");
      }
      FASTEN_TRY(fill_or_fail(limits));
    }
    std::string text = m_buffer.substr(m_start, newline - m_start);
    m_start = newline + 1;
    compact();
    if (!text.empty() && text.back() == '\r') {
      text.pop_back();
    }
    return text;
  }

  /// The head, up to its blank line.
  Result<std::string> head(Limits& limits) {
    std::size_t end;
    while ((end = m_buffer.find("\r\n\r\n", m_start)) == std::string::npos) {
      if (m_buffer.size() - m_start > k_max_head_bytes) {
        return failure(m_endpoint, "etcd's answer has a head larger than " + std::to_string(k_max_head_bytes) +
                                       " bytes");
      }
      FASTEN_TRY(fill_or_fail(limits));
    }
    std::string text = m_buffer.substr(m_start, end - m_start);
    m_start = end + 4;
    compact();
    return text;
  }

  /// Gives `count` bytes to `sink` (all there are up to the end of the
  /// stream for std::nullopt); false once `sink` said stop.
  Result<bool> body(std::optional<std::size_t> count, Limits& limits, const Sink& sink) {
    std::size_t left = count.value_or(SIZE_MAX);
    while (left > 0) {
      if (m_start == m_buffer.size()) {
        const bool more = FASTEN_TRY(count ? fill_or_fail(limits) : fill(limits));
        if (!more) {
          return true; // the end of a body that runs to the end of the stream
        }
      }
      const auto piece = std::min(left, m_buffer.size() - m_start);
      const std::string_view data(m_buffer.data() + m_start, piece);
      m_start += piece;
      left -= piece;
      const bool wants_more = sink(data);
      compact(); // after the sink: it moves the bytes `data` shows
      if (!wants_more) {
        return false;
      }
    }
    return true;
  }

  /// Whether the server has closed a connection that is idle: a kept one
  /// it has closed since is not worth sending on.
  bool closed_while_idle() {
    pollfd ready{.fd = m_socket.get(), .events = POLLIN, .revents = 0};
    return ::poll(&ready, 1, 0) != 0 || m_start != m_buffer.size();
  }

  bool nothing_read() const noexcept { return m_read_nothing; }

private:
  Result<bool> fill_or_fail(Limits& limits) {
    if (!FASTEN_TRY(fill(limits))) {
      return failure(m_endpoint, m_read_nothing && !m_ssl
                                     ? "the connection was closed with no answer (does the endpoint want TLS? "
                                       "Then name it https://)"
                                     : "the connection was closed before the whole answer came");
    }
    m_read_nothing = false;
    return true;
  }

  void compact() {
    if (m_start == m_buffer.size()) {
      m_buffer.clear();
      m_start = 0;
    } else if (m_start > 65536) {
      m_buffer.erase(0, m_start);
      m_start = 0;
    }
  }

  Result<void> wait_for_tls(int result, Limits& limits, bool handshake) {
    switch (SSL_get_error(m_ssl.get(), result)) {
    case SSL_ERROR_WANT_READ:
      return wait_ready(m_socket.get(), POLLIN, limits, m_endpoint);
    case SSL_ERROR_WANT_WRITE:
      return wait_ready(m_socket.get(), POLLOUT, limits, m_endpoint);
    default: {
      std::string why = tls_failure(m_ssl.get(), result, handshake);
      if (!handshake && m_read_nothing) {
        // TLS 1.3 refuses a missing client certificate after the handshake.
        why += " (does etcd want a client certificate? ETCDCTL_CERT and ETCDCTL_KEY give one)";
      }
      return failure(m_endpoint, why);
    }
    }
  }

  FileHandle m_socket;
  SslPointer m_ssl;
  std::string m_endpoint;
  std::string m_buffer;
  std::size_t m_start = 0;
  bool m_read_nothing = true;
};

namespace {

struct AddrinfoFree {
  void operator()(addrinfo* list) const noexcept { freeaddrinfo(list); }
};
using Addresses = std::unique_ptr<addrinfo, AddrinfoFree>;

/// How often a name lookup in progress looks at its Interrupt: a signal that
/// ends a waiting fasten must not wait for a DNS server that is slow.
constexpr milliseconds k_lookup_interrupt_check{20};

/// Acts on `interrupt` (null: none) if it has something to act on, without waiting.
void act_if_ready(const Interrupt* interrupt) {
  if (interrupt == nullptr || interrupt->descriptor < 0) {
    return;
  }
  pollfd ready{.fd = interrupt->descriptor, .events = POLLIN, .revents = 0};
  if (::poll(&ready, 1, 0) > 0) {
    interrupt->act();
  }
}

/// A name lookup in glibc's own thread (getaddrinfo_a), waited for until
/// the deadline: a DNS server that does not answer holds up no request, nor
/// the signal that `limits.interrupt` acts on. One that is still running at
/// the deadline is left to finish on its own, its few bytes never freed.
Result<Addresses> look_up(const Address& address, Limits& limits, const std::string& endpoint) {
  struct Lookup {
    std::string host;
    std::string port;
    addrinfo hints{};
    gaicb request{};
  };
  auto lookup = std::make_unique<Lookup>();
  lookup->host = address.host;
  lookup->port = address.port;
  lookup->hints.ai_socktype = SOCK_STREAM;
  lookup->hints.ai_flags = AI_ADDRCONFIG;
  lookup->request.ar_name = lookup->host.c_str();
  lookup->request.ar_service = lookup->port.c_str();
  lookup->request.ar_request = &lookup->hints;
  gaicb* list[] = {&lookup->request};
  if (const int started = getaddrinfo_a(GAI_NOWAIT, list, 1, nullptr); started != 0) {
    return failure(endpoint, std::string("cannot look up ") + address.host + ": " + gai_strerror(started));
  }
  while (gai_error(&lookup->request) == EAI_INPROGRESS) {
    const auto left = std::chrono::ceil<milliseconds>(limits.deadline - BootClock::now());
    const bool aborted = limits.abort != nullptr && limits.abort->load();
    if (left <= milliseconds::zero() || aborted) {
      if (gai_cancel(&lookup->request) != EAI_CANCELED) {
        (void)lookup.release(); // glibc's thread still writes into it
      }
      limits.timed_out = !aborted;
      limits.aborted = aborted;
      return failure(endpoint, aborted ? "interrupted" : "no answer from the name lookup of " + address.host);
    }
    act_if_ready(limits.interrupt);
    const auto slice = std::min(left, limits.interrupt != nullptr ? k_lookup_interrupt_check : k_abort_check);
    const timespec wait{.tv_sec = 0, .tv_nsec = static_cast<long>(slice.count()) * 1000000};
    const gaicb* waiting[] = {&lookup->request};
    gai_suspend(waiting, 1, &wait);
  }
  if (const int error = gai_error(&lookup->request); error != 0) {
    return failure(endpoint, std::string("cannot look up ") + address.host + ": " + gai_strerror(error));
  }
  return Addresses(lookup->request.ar_result);
}

/// Numeric addresses need no lookup, and no thread.
Result<Addresses> addresses_of(const Address& address, Limits& limits, const std::string& endpoint) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* list = nullptr;
  if (getaddrinfo(address.host.c_str(), address.port.c_str(), &hints, &list) == 0) {
    return Addresses(list);
  }
  return look_up(address, limits, endpoint);
}

/// A connected socket to one of `addresses`, the first that takes it.
Result<FileHandle> connect_to(const addrinfo* addresses, Limits& limits, const std::string& endpoint) {
  std::string why = "no address";
  for (const addrinfo* each = addresses; each != nullptr; each = each->ai_next) {
    FileHandle socket(::socket(each->ai_family, each->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!socket.valid()) {
      why = std::string("socket: ") + system_message(errno);
      continue;
    }
    int error = ::connect(socket.get(), each->ai_addr, each->ai_addrlen) == 0 ? 0 : errno;
    if (error == EINPROGRESS) {
      FASTEN_TRY(wait_ready(socket.get(), POLLOUT, limits, endpoint));
      socklen_t size = sizeof error;
      getsockopt(socket.get(), SOL_SOCKET, SO_ERROR, &error, &size);
    }
    if (error == 0) {
      // A request is one write: send it at once, not after the last ACK.
      const int on = 1;
      setsockopt(socket.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
      return socket;
    }
    why = "connecting: " + system_message(error);
  }
  return failure(endpoint, why);
}

/// The trailers after the last chunk, which etcd does not send, up to the
/// blank line that ends the answer.
template <typename Stream> Result<void> skip_trailers(Stream& stream, Limits& limits) {
  for (;;) {
    const auto line = FASTEN_TRY(stream.line(limits, k_max_head_bytes));
    if (line.empty()) {
      return {};
    }
  }
}

} // namespace

Connection::Connection(TlsSettings tls) : m_settings(std::move(tls)) {}

Connection::~Connection() = default;

void Connection::close() noexcept {
  m_stream.reset();
  m_endpoint.clear();
}

Result<void> Connection::open(const std::string& endpoint, Limits& limits, BootClock::time_point connect_by) {
  close();
  const auto address = address_of(endpoint);
  Limits connecting{.deadline = std::min(limits.deadline, connect_by), .abort = limits.abort};
  const auto ended = [&](Error error) {
    limits.aborted = connecting.aborted;
    limits.timed_out = connecting.timed_out && connect_by >= limits.deadline;
    if (connecting.timed_out && !limits.timed_out) {
      return failure(endpoint, "could not connect within the connect timeout");
    }
    return error;
  };
  auto addresses = addresses_of(address, connecting, endpoint);
  if (!addresses) {
    return ended(addresses.error());
  }
  auto socket = connect_to(addresses->get(), connecting, endpoint);
  if (!socket) {
    return ended(socket.error());
  }
  auto stream = std::make_unique<Stream>(std::move(socket).value(), endpoint);
  if (address.tls) {
    if (!m_tls) {
      m_tls = FASTEN_TRY(TlsContext::make(m_settings, endpoint));
    }
    if (auto started = stream->start_tls(m_tls->get(), address, !m_settings.skip_verify, connecting); !started) {
      return ended(started.error());
    }
  }
  m_stream = std::move(stream);
  m_endpoint = endpoint;
  return {};
}

Result<int> Connection::exchange(const Request& request, Limits& limits, BootClock::time_point connect_by,
                                 const Sink& sink) {
  const bool kept = m_stream && m_endpoint == request.endpoint && !m_stream->closed_while_idle();
  if (!kept) {
    FASTEN_TRY(open(request.endpoint, limits, connect_by));
  }
  bool nothing_came = false;
  auto status = send_and_read(request, limits, sink, &nothing_came);
  if (!status && kept && nothing_came && !limits.timed_out && !limits.aborted) {
    // The server closed the kept connection as the request went out: etcd
    // cannot have read it. Once more on a new one.
    FASTEN_TRY(open(request.endpoint, limits, connect_by));
    status = send_and_read(request, limits, sink, &nothing_came);
  }
  if (!status) {
    close();
  }
  return status;
}

Result<int> Connection::send_and_read(const Request& request, Limits& limits, const Sink& sink,
                                      bool* nothing_came) {
  const auto address = address_of(request.endpoint);
  std::string message = "POST " + std::string(request.path) + " HTTP/1.1\r\nHost: " + address.host + ":" +
                        address.port + "\r\nContent-Type: application/json\r\nContent-Length: " +
                        std::to_string(request.body.size()) + "\r\n";
  if (!request.token.empty()) {
    message += "Authorization: " + std::string(request.token) + "\r\n";
  }
  message += "\r\n";
  message += request.body;
  *nothing_came = true;
  FASTEN_TRY(m_stream->write_all(message, limits));
  const auto head_text = FASTEN_TRY(m_stream->head(limits));
  *nothing_came = false;
  const auto head = parse_head(head_text);
  if (!head) {
    return failure(request.endpoint, "an answer that is not HTTP/1.1: " + head_text.substr(0, 100));
  }
  bool whole = true;
  if (head->chunked) {
    for (;;) {
      const auto size = parse_chunk_size(FASTEN_TRY(m_stream->line(limits, 1024)));
      if (!size) {
        return failure(request.endpoint, "a chunk of the answer without its size");
      }
      if (*size == 0) {
        FASTEN_TRY(skip_trailers(*m_stream, limits));
        break;
      }
      whole = FASTEN_TRY(m_stream->body(*size, limits, sink));
      if (!whole) {
        break;
      }
      const auto end_of_chunk = FASTEN_TRY(m_stream->line(limits, 2));
      if (!end_of_chunk.empty()) {
        return failure(request.endpoint, "a chunk of the answer longer than its size");
      }
    }
  } else {
    whole = FASTEN_TRY(m_stream->body(head->content_length, limits, sink));
  }
  if (!whole || head->close || (!head->content_length.has_value() && !head->chunked)) {
    close();
  }
  return head->status;
}

} // namespace fasten::etcd::http
