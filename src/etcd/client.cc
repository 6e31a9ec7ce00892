#include "etcd/client.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <cstring>

namespace fasten::etcd {

namespace {

constexpr std::string_view k_base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// gRPC's Unavailable, which the gateway answers with HTTP 503: this member
/// has no leader or is shutting down, another one may do.
constexpr long k_http_unavailable = 503;
/// The longest a try on one endpoint of several lasts in a request's first
/// round (Client::call).
constexpr std::chrono::milliseconds k_first_try_limit{1000};

/// etcd (3.4 and later) refuses every gateway request made with a client
/// certificate that has a common name while authentication is on, with HTTP
/// 400 and these words (embed/serve.go): over gRPC the CN names the user,
/// over the gateway it would not.
constexpr long k_http_bad_request = 400;
constexpr std::string_view k_gateway_refuses_cn = "CommonName of client sending a request against gateway";

/// A field of a JSON object, or null where there is none (operator[] of a
/// const Json is undefined for a missing field, and throws for a non-object).
const Json& field_of(const Json& object, const char* name) {
  static const Json none;
  if (!object.is_object()) {
    return none;
  }
  const auto found = object.find(name);
  return found != object.end() ? *found : none;
}

/// A boolean field: false where it is missing or not a boolean (Json::value
/// throws for another type).
bool bool_field(const Json& object, const char* name) {
  const auto& field = field_of(object, name);
  return field.is_boolean() && field.get<bool>();
}

/// A string field, or `otherwise` where it is missing or not a string.
std::string string_field(const Json& object, const char* name, std::string otherwise) {
  const auto& field = field_of(object, name);
  return field.is_string() ? field.get<std::string>() : otherwise;
}

std::string key_text(const Json& kv, const char* field) {
  return base64_decode(string_field(kv, field, "")).value_or(std::string());
}

/// At most 200 bytes of `text`, for a message.
std::string excerpt(const std::string& text) {
  return text.size() <= 200 ? text : text.substr(0, 200) + "...";
}

/// Whether JSON `text` nests arrays and objects deeper than `limit`.
bool nested_deeper_than(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) {
        return true;
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

} // namespace

std::string base64_encode(std::string_view bytes) {
  std::string text;
  text.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned group = static_cast<unsigned char>(bytes[i]) << 16 |
                           static_cast<unsigned char>(bytes[i + 1]) << 8 |
                           static_cast<unsigned char>(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) {
      text += k_base64_alphabet[(group >> shift) & 0x3f];
    }
  }
  if (i < bytes.size()) {
    unsigned group = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) {
      group |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    }
    text += k_base64_alphabet[(group >> 18) & 0x3f];
    text += k_base64_alphabet[(group >> 12) & 0x3f];
    text += i + 1 < bytes.size() ? k_base64_alphabet[(group >> 6) & 0x3f] : '=';
    text += '=';
  }
  return text;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::string bytes;
  bytes.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    unsigned group = 0;
    int padding = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      unsigned value = 0;
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        ++padding;
      } else if (const auto at = k_base64_alphabet.find(c); at != std::string_view::npos && padding == 0) {
        value = static_cast<unsigned>(at);
      } else {
        return std::nullopt;
      }
      group = group << 6 | value;
    }
    bytes += static_cast<char>(group >> 16 & 0xff);
    if (padding < 2) {
      bytes += static_cast<char>(group >> 8 & 0xff);
    }
    if (padding < 1) {
      bytes += static_cast<char>(group & 0xff);
    }
  }
  return bytes;
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  // Every byte was 0xff: to the end of the keyspace, which etcd spells "\0".
  return std::string(1, '\0');
}

std::int64_t int_field(const Json& object, const char* name) {
  if (!object.is_object() || !object.contains(name)) {
    return 0;
  }
  const auto& field = object[name];
  if (field.is_number_integer()) {
    return field.get<std::int64_t>();
  }
  if (field.is_string()) {
    const auto& text = field.get_ref<const std::string&>();
    std::int64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    return error == std::errc() && end == text.data() + text.size() ? value : 0;
  }
  return 0;
}

Json range_body(const RangeRequest& request) {
  Json body = {{"key", base64_encode(request.key)}};
  if (!request.range_end.empty()) {
    body["range_end"] = base64_encode(request.range_end);
  }
  if (request.max_create_revision != 0) {
    body["max_create_revision"] = std::to_string(request.max_create_revision);
  }
  if (request.order != Order::none) {
    body["sort_target"] = "CREATE";
    body["sort_order"] = request.order == Order::oldest_first ? "ASCEND" : "DESCEND";
  }
  if (request.limit != 0) {
    body["limit"] = std::to_string(request.limit);
  }
  if (request.keys_only) {
    body["keys_only"] = true;
  }
  if (request.count_only) {
    body["count_only"] = true;
  }
  return body;
}

namespace {

Json put_op(const Put& put) {
  Json op = {{"key", base64_encode(put.key)}, {"value", base64_encode(put.value)}};
  if (put.lease != 0) {
    op["lease"] = std::to_string(put.lease);
  }
  return {{"request_put", op}};
}

} // namespace

Json create_key_body(const std::string& key, const std::string& value, std::int64_t lease,
                     const std::vector<Put>& also, const std::vector<RangeRequest>& looks) {
  const auto encoded = base64_encode(key);
  Json body = {
      {"compare",
       Json::array(
           {{{"target", "CREATE"}, {"key", encoded}, {"result", "EQUAL"}, {"create_revision", "0"}}})},
      {"success", Json::array()},
      {"failure", Json::array({{{"request_range", {{"key", encoded}}}}})},
  };
  body["success"].push_back(put_op({.key = key, .value = value, .lease = lease}));
  for (const auto& put : also) {
    body["success"].push_back(put_op(put));
  }
  // After the puts: a transaction's reads see its own writes.
  for (const auto& look : looks) {
    body["success"].push_back({{"request_range", range_body(look)}});
  }
  return body;
}

Json range_if_body(const OwnKey& own, const std::vector<RangeRequest>& looks) {
  const auto encoded = base64_encode(own.key);
  Json body = ranges_body(looks);
  body["compare"] = Json::array({{{"target", "CREATE"},
                                  {"key", encoded},
                                  {"result", "EQUAL"},
                                  {"create_revision", std::to_string(own.create_revision)}},
                                 {{"target", "LEASE"},
                                  {"key", encoded},
                                  {"result", "EQUAL"},
                                  {"lease", std::to_string(own.lease)}}});
  return body;
}

Json ranges_body(const std::vector<RangeRequest>& looks) {
  Json body = {{"success", Json::array()}};
  for (const auto& look : looks) {
    body["success"].push_back({{"request_range", range_body(look)}});
  }
  return body;
}

Json put_if_body(const std::vector<CreateRevisionIs>& compares, const std::vector<Put>& puts,
                 const std::vector<std::string>& deletes) {
  Json body = {{"compare", Json::array()}, {"success", Json::array()}};
  for (const auto& compare : compares) {
    body["compare"].push_back({{"target", "CREATE"},
                               {"key", base64_encode(compare.key)},
                               {"result", "EQUAL"},
                               {"create_revision", std::to_string(compare.revision)}});
  }
  for (const auto& put : puts) {
    body["success"].push_back(put_op(put));
  }
  for (const auto& key : deletes) {
    body["success"].push_back({{"request_delete_range", {{"key", base64_encode(key)}}}});
  }
  return body;
}

Json watch_body(const WatchRequest& request) {
  Json create = {{"key", base64_encode(request.key)},
                 {"start_revision", std::to_string(request.start_revision)}};
  if (!request.range_end.empty()) {
    create["range_end"] = base64_encode(request.range_end);
  }
  return {{"create_request", create}};
}

RangeResponse parse_range(const Json& answer) {
  RangeResponse range;
  range.revision = int_field(field_of(answer, "header"), "revision");
  range.raft_term = int_field(field_of(answer, "header"), "raft_term");
  range.count = int_field(answer, "count");
  if (const auto& kvs = field_of(answer, "kvs"); kvs.is_array()) {
    for (const auto& kv : kvs) {
      range.kvs.push_back(KeyValue{
          .key = key_text(kv, "key"),
          .value = key_text(kv, "value"),
          .create_revision = int_field(kv, "create_revision"),
          .mod_revision = int_field(kv, "mod_revision"),
          .lease = int_field(kv, "lease"),
      });
    }
  }
  return range;
}

namespace {

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

/// A boolean as etcdctl (Go's strconv.ParseBool) reads one.
bool true_in_environment(const char* name) {
  const auto value = environment(name);
  return value == "1" || value == "t" || value == "T" || value == "true" || value == "TRUE" ||
         value == "True";
}

/// gRPC's status codes that the gateway puts in an error's "code".
constexpr int k_grpc_permission_denied = 7;
constexpr int k_grpc_unauthenticated = 16;

int grpc_code(const Json& body) {
  return body.is_object() ? static_cast<int>(int_field(body, "code")) : 0;
}

std::string grpc_message(const Json& body) {
  return string_field(body, "message", excerpt(body.dump()));
}

} // namespace

namespace {

http::TlsSettings tls_settings(const Security& security) {
  return {.ca_file = security.ca_file,
          .cert_file = security.cert_file,
          .key_file = security.key_file,
          .skip_verify = security.skip_verify};
}

} // namespace

Security Security::from_environment() {
  Security security{
      .ca_file = environment("ETCDCTL_CACERT"),
      .cert_file = environment("ETCDCTL_CERT"),
      .key_file = environment("ETCDCTL_KEY"),
      .skip_verify = true_in_environment("ETCDCTL_INSECURE_SKIP_TLS_VERIFY"),
      .user = environment("ETCDCTL_USER"),
      .password = environment("ETCDCTL_PASSWORD"),
  };
  // etcdctl's --user takes "name:password" as well as "name".
  if (const auto colon = security.user.find(':'); colon != std::string::npos) {
    security.password = security.user.substr(colon + 1);
    security.user.resize(colon);
  }
  return security;
}

Result<void> Security::check() const {
  if (!cert_file.empty() && key_file.empty()) {
    return Error(
        ErrorKind::denied, "a client certificate without its key", cert_file,
        "ETCDCTL_KEY names no key file for the certificate in ETCDCTL_CERT; set it, as etcdctl wants");
  }
  if (cert_file.empty() && !key_file.empty()) {
    return Error(ErrorKind::denied, "a client key without its certificate", key_file,
                 "ETCDCTL_CERT names no certificate for the key in ETCDCTL_KEY; set it, as etcdctl wants");
  }
  return {};
}

Result<Reply> read_reply(long http_status, const std::string& answer, const std::string& endpoint) {
  if (nested_deeper_than(answer, k_max_answer_depth)) {
    return Error(ErrorKind::unavailable, "etcd gave an answer nested too deep", endpoint,
                 "HTTP " + std::to_string(http_status) + ": " + excerpt(answer));
  }
  auto json = Json::parse(answer, nullptr, false);
  if (json.is_discarded()) {
    return Error(ErrorKind::unavailable, "etcd gave an answer that is not JSON", endpoint,
                 "HTTP " + std::to_string(http_status) + ": " + excerpt(answer));
  }
  return Reply{http_status, std::move(json)};
}

Result<Json> accepted_answer(const char* path, Reply reply, const std::string& user,
                             const std::string& endpoint) {
  // A denied role, a token etcd does not take, or no user where etcd wants one.
  if (const int code = grpc_code(reply.body);
      code == k_grpc_permission_denied || code == k_grpc_unauthenticated ||
      grpc_message(reply.body).find("user name is empty") != std::string::npos) {
    return Error(ErrorKind::denied,
                 "etcd refused " + std::string(path) +
                     (user.empty() ? " (no ETCDCTL_USER)" : " to the user " + user),
                 endpoint, grpc_message(reply.body));
  }
  if (reply.http_status != 200) {
    return Error(ErrorKind::unavailable, std::string("etcd refused ") + path, endpoint,
                 grpc_message(reply.body));
  }
  return std::move(reply.body);
}

Result<Lease> granted_lease(const Json& answer, const std::string& endpoint) {
  const Lease lease{int_field(answer, "ID"), std::chrono::seconds(int_field(answer, "TTL"))};
  // etcd's lease IDs are above 0 (v3_server.go clears the top bit).
  if (lease.id <= 0 || lease.ttl.count() <= 0) {
    return Error(ErrorKind::unavailable, "etcd granted no lease", endpoint,
                 string_field(answer, "error", excerpt(answer.dump())));
  }
  return lease;
}

Result<std::optional<Renewed>> renewed_ttl(const Json& answer, const std::string& endpoint) {
  const auto& result = field_of(answer, "result");
  if (!result.is_object()) {
    return Error(ErrorKind::unavailable, "etcd did not renew the lease", endpoint, excerpt(answer.dump()));
  }
  // A lease that expired or was revoked is renewed with no TTL at all.
  const auto ttl = int_field(result, "TTL");
  if (ttl <= 0) {
    return std::optional<Renewed>();
  }
  return std::optional<Renewed>(Renewed{.ttl = std::chrono::seconds(ttl),
                                        .raft_term = int_field(field_of(result, "header"), "raft_term")});
}

Result<void> lease_revoked(const Reply& reply, const std::string& endpoint) {
  // gRPC's NotFound: the lease ran out or was revoked already, which is all
  // a revoke wants.
  constexpr int k_not_found = 5;
  if (reply.http_status != 200 && grpc_code(reply.body) != k_not_found) {
    return Error(ErrorKind::unavailable, "etcd did not revoke the lease", endpoint, grpc_message(reply.body));
  }
  return {};
}

Result<std::int64_t> created_revision(const Json& answer, const std::string& key) {
  std::int64_t revision = 0;
  if (bool_field(answer, "succeeded")) {
    revision = int_field(field_of(answer, "header"), "revision");
  } else if (const auto& responses = field_of(answer, "responses");
             responses.is_array() && !responses.empty()) {
    // It existed: a retry of a request whose first answer was lost.
    const auto existing = parse_range(field_of(responses[0], "response_range"));
    if (!existing.kvs.empty() && existing.kvs.front().key == key) {
      revision = existing.kvs.front().create_revision;
    }
  }
  if (revision <= 0) {
    return Error(ErrorKind::unavailable, "etcd did not create the lock's key", key, excerpt(answer.dump()));
  }
  return revision;
}

namespace {

/// The read that is response `index` of a transaction's answer, with the
/// revision and raft term of the whole answer; std::nullopt when there is none.
std::optional<RangeResponse> read_in_transaction(const Json& answer, std::size_t index) {
  const auto& responses = field_of(answer, "responses");
  if (!responses.is_array() || responses.size() <= index) {
    return std::nullopt;
  }
  const auto& read = field_of(responses[index], "response_range");
  if (!read.is_object()) {
    return std::nullopt;
  }
  auto range = parse_range(read);
  range.revision = int_field(field_of(answer, "header"), "revision");
  range.raft_term = int_field(field_of(answer, "header"), "raft_term");
  return range;
}

} // namespace

std::optional<Looks> looked_at_creation(const Json& answer, const std::string& key, std::int64_t lease,
                                        std::size_t puts, std::size_t looks) {
  if (!bool_field(answer, "succeeded") || looks == 0) {
    return std::nullopt;
  }
  Looks read;
  for (std::size_t index = 0; index < looks; ++index) {
    auto look = read_in_transaction(answer, 1 + puts + index);
    if (!look || look->revision <= 0) {
      return std::nullopt;
    }
    read.push_back(std::move(*look));
  }
  const auto made = read.front().revision;
  // The key itself must be in the first as made: at the answer's revision,
  // on the holder's lease.
  if (std::ranges::none_of(read.front().kvs, [&](const KeyValue& kv) {
        return kv.key == key && kv.create_revision == made && kv.lease == lease;
      })) {
    return std::nullopt;
  }
  for (auto& look : read) {
    std::erase_if(look.kvs, [made](const KeyValue& kv) { return kv.create_revision >= made; });
  }
  return read;
}

Result<std::optional<Looks>> range_if_answer(const Json& answer, const std::string& key, std::size_t looks) {
  if (!bool_field(answer, "succeeded")) {
    return std::optional<Looks>();
  }
  Looks read;
  for (std::size_t index = 0; index < looks; ++index) {
    auto look = read_in_transaction(answer, index);
    if (!look) {
      return Error(ErrorKind::unavailable, "etcd did not read the queue", key, excerpt(answer.dump()));
    }
    read.push_back(std::move(*look));
  }
  return std::optional<Looks>(std::move(read));
}

bool puts_made(const Json& answer) {
  return bool_field(answer, "succeeded");
}

std::optional<WatchEnd> WatchStream::read(std::string_view data) {
  m_pending.append(data);
  std::size_t newline;
  while (!m_end && (newline = m_pending.find('\n')) != std::string::npos) {
    const auto line = m_pending.substr(0, newline);
    m_pending.erase(0, newline + 1);
    const auto message =
        nested_deeper_than(line, k_max_answer_depth) ? Json(nullptr) : Json::parse(line, nullptr, false);
    const auto& result = field_of(message, "result");
    if (!result.is_object()) {
      m_end = WatchEnd::interrupted; // an error message: look again
      break;
    }
    if (bool_field(result, "canceled") || int_field(result, "compact_revision") != 0) {
      m_end = WatchEnd::interrupted;
      break;
    }
    if (const auto& events = field_of(result, "events"); events.is_array()) {
      for (const auto& event : events) {
        // A put is the type's default, which the gateway leaves out.
        if (m_puts_too || string_field(event, "type", "") == "DELETE") {
          m_end = WatchEnd::changed;
        }
      }
    }
  }
  if (!m_end && m_pending.size() > k_max_answer_bytes) {
    m_end = WatchEnd::interrupted;
  }
  return m_end;
}

Client::Client(std::vector<std::string> endpoints, Security security, Timeouts timeouts)
    : m_endpoints(std::move(endpoints)), m_security(std::move(security)), m_timeouts(timeouts),
      m_connection(tls_settings(m_security)), m_watch_connection(tls_settings(m_security)) {}

Client::~Client() = default;

Result<void> Client::usable() const {
  return m_security.check();
}

std::string Client::endpoints() const {
  std::string joined;
  for (const auto& endpoint : m_endpoints) {
    joined += (joined.empty() ? "" : ",") + endpoint;
  }
  return joined;
}

Result<void> Client::authenticate(Deadline deadline) {
  m_token.clear();
  auto reply = FASTEN_TRY(call("/v3/auth/authenticate",
                               {{"name", m_security.user}, {"password", m_security.password}}, deadline));
  if (reply.http_status == 200 && reply.body.contains("token") && reply.body["token"].is_string()) {
    m_token = reply.body["token"].get<std::string>();
    return {};
  }
  // The password is in no message: only the user's name and etcd's words.
  return Error(ErrorKind::denied, "etcd refused the user " + m_security.user, m_endpoints[m_current],
               grpc_message(reply.body));
}

Result<Reply> Client::call_as_user(const char* path, const Json& body, Deadline deadline) {
  if (m_security.user.empty()) {
    return call(path, body, deadline);
  }
  if (m_token.empty()) {
    FASTEN_TRY(authenticate(deadline));
  }
  auto reply = call(path, body, deadline);
  // A simple token expires after --auth-token-ttl without use: a new one.
  if (reply && grpc_code(reply->body) == k_grpc_unauthenticated) {
    FASTEN_TRY(authenticate(deadline));
    reply = call(path, body, deadline);
  }
  return reply;
}

Result<Reply> Client::call(const char* path, const Json& body, Deadline deadline) {
  FASTEN_TRY(usable());
  if (m_cap && *m_cap < deadline.when()) {
    deadline = Deadline::at(*m_cap);
  }
  const std::string text = body.dump();
  const auto count = m_endpoints.size();
  std::string failures;
  // A round tries every endpoint once, from the one that answered last. A
  // try lasts an equal share of the time left, and with several endpoints
  // at most k_first_try_limit in the first round, twice that in the next,
  // and so on: a member that has lost its leader holds a linearizable read
  // until its own request timeout, even once another member leads, so the
  // request moves on to one that answers and comes back to the first later.
  // A round in which no try was cut short by that limit is the last.
  auto limit = Milliseconds(k_first_try_limit);
  for (bool again = true; again; limit *= 2) {
    again = false;
    failures.clear();
    for (std::size_t tried = 0; tried < count; ++tried) {
      if (m_abort != nullptr && m_abort->load()) {
        return Error(ErrorKind::unavailable, "gave up on etcd", endpoints(), "interrupted");
      }
      const auto left = deadline.left();
      if (left == std::chrono::nanoseconds(0)) {
        failures += std::string(failures.empty() ? "" : "; ") + "no time left for " +
                    std::to_string(count - tried) + " more endpoint(s)";
        return Error(ErrorKind::unavailable, "cannot reach etcd", endpoints(), failures);
      }
      // The last endpoint gets all the time left; earlier ones an equal share.
      const auto fair = left / static_cast<int>(count - tried);
      const auto share = count > 1 ? std::min<std::chrono::nanoseconds>(fair, limit) : fair;
      const auto index = (m_current + tried) % count;
      const auto try_deadline = BootClock::now() + share;
      if (auto reply = try_endpoint(index, path, text, try_deadline, failures)) {
        return std::move(*reply);
      }
      again = again || (share < fair && BootClock::now() >= try_deadline);
    }
  }
  return Error(ErrorKind::unavailable, "cannot reach etcd", endpoints(), failures);
}

std::optional<Result<Reply>> Client::try_endpoint(std::size_t index, const char* path, const std::string& body,
                                                  BootClock::time_point try_deadline, std::string& failures) {
  const auto& endpoint = m_endpoints[index];
  std::string answer;
  bool oversized = false;
  const auto collect = [&](std::string_view data) {
    oversized = answer.size() + data.size() > k_max_answer_bytes;
    if (!oversized) {
      answer.append(data);
    }
    return !oversized;
  };
  http::Limits limits{.deadline = try_deadline, .abort = m_abort, .interrupt = m_interrupt};
  const auto try_sent_at = BootClock::now();
  const auto status = m_connection.exchange({.endpoint = endpoint, .path = path, .body = body, .token = m_token},
                                            limits, try_sent_at + m_timeouts.connect, collect);
  std::string why;
  if (!status) {
    why = status.error().detail();
  } else if (status.value() == k_http_unavailable) {
    why = "HTTP 503: " + answer.substr(0, 200);
  } else {
    m_current = index;
    m_answered_try_sent_at = try_sent_at;
    if (oversized) {
      // Not an endpoint that cannot be reached, but one that answers wrong.
      return Error(ErrorKind::unavailable,
                   "etcd gave an answer larger than " + std::to_string(k_max_answer_bytes >> 20) + " MiB",
                   endpoint, std::string(path));
    }
    if (status.value() == k_http_bad_request && answer.find(k_gateway_refuses_cn) != std::string::npos) {
      return refused_common_name();
    }
    return read_reply(status.value(), answer, endpoint);
  }
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) {
    why.pop_back();
  }
  failures += (failures.empty() ? "" : "; ") + (m_endpoints.size() > 1 ? endpoint + ": " : "") + why;
  return std::nullopt;
}

Error Client::refused_common_name() const {
  return Error(
      ErrorKind::denied,
      "etcd's JSON gateway refuses a client certificate with a common name (CN) while authentication "
      "is on",
      m_security.cert_file,
      "give one without a CN in ETCDCTL_CERT and ETCDCTL_KEY, and the user in ETCDCTL_USER and "
      "ETCDCTL_PASSWORD");
}

Result<Json> Client::call_ok(const char* path, const Json& body, Deadline deadline) {
  auto reply = FASTEN_TRY(call_as_user(path, body, deadline));
  return accepted_answer(path, std::move(reply), m_security.user, m_endpoints[m_current]);
}

Result<Lease> Client::grant(std::chrono::seconds ttl) {
  const auto answer = FASTEN_TRY(
      call_ok("/v3/lease/grant", {{"TTL", std::to_string(ttl.count())}}, Deadline(m_timeouts.request)));
  return granted_lease(answer, m_endpoints[m_current]);
}

Result<std::optional<Renewed>> Client::keep_alive(std::int64_t lease, Deadline deadline) {
  // The gateway serves the keep-alive stream one message at a time: one
  // request, one {"result": ...} answer.
  const auto answer = FASTEN_TRY(call_ok("/v3/lease/keepalive", {{"ID", std::to_string(lease)}}, deadline));
  return renewed_ttl(answer, m_endpoints[m_current]);
}

Result<void> Client::revoke(std::int64_t lease, Deadline deadline) {
  const auto capped = Deadline::at(std::min(deadline.when(), Deadline(m_timeouts.request).when()));
  const auto reply = FASTEN_TRY(call_as_user("/v3/lease/revoke", {{"ID", std::to_string(lease)}}, capped));
  return lease_revoked(reply, m_endpoints[m_current]);
}

Result<RangeResponse> Client::range(const RangeRequest& request, std::optional<Deadline> deadline) {
  const auto answer = FASTEN_TRY(
      call_ok("/v3/kv/range", range_body(request), deadline.value_or(Deadline(m_timeouts.request))));
  return parse_range(answer);
}

Result<Client::Created> Client::create_key(const std::string& key, const std::string& value,
                                           std::int64_t lease, const std::vector<Put>& also,
                                           const std::vector<RangeRequest>& looks) {
  const auto answer = FASTEN_TRY(
      call_ok("/v3/kv/txn", create_key_body(key, value, lease, also, looks), Deadline(m_timeouts.request)));
  const auto revision = FASTEN_TRY(created_revision(answer, key));
  return Created{.revision = revision,
                 .looks = looked_at_creation(answer, key, lease, also.size(), looks.size())};
}

Result<std::optional<Looks>> Client::range_if(const OwnKey& own, const std::vector<RangeRequest>& looks) {
  const auto answer =
      FASTEN_TRY(call_ok("/v3/kv/txn", range_if_body(own, looks), Deadline(m_timeouts.request)));
  return range_if_answer(answer, own.key, looks.size());
}

Result<Looks> Client::ranges(const std::vector<RangeRequest>& looks) {
  const auto answer = FASTEN_TRY(call_ok("/v3/kv/txn", ranges_body(looks), Deadline(m_timeouts.request)));
  auto read = FASTEN_TRY(range_if_answer(answer, "", looks.size()));
  if (!read) {
    return Error(ErrorKind::unavailable, "etcd did not read the queue", "", excerpt(answer.dump()));
  }
  return std::move(*read);
}

Result<bool> Client::put_if(const std::vector<CreateRevisionIs>& compares, const std::vector<Put>& puts,
                            const std::vector<std::string>& deletes, std::optional<Deadline> deadline) {
  const auto answer = FASTEN_TRY(call_ok("/v3/kv/txn", put_if_body(compares, puts, deletes),
                                         deadline.value_or(Deadline(m_timeouts.request))));
  return puts_made(answer);
}

Result<WatchEnd> Client::wait_for_change(const WatchRequest& request, Milliseconds timeout) {
  FASTEN_TRY(usable());
  if (m_abort != nullptr && m_abort->load()) {
    return WatchEnd::aborted;
  }
  const auto& endpoint = m_endpoints[m_current];
  WatchStream state(request.puts_too);
  const auto body = watch_body(request).dump();
  const auto start = BootClock::now();
  // The abort flag ends the stream early when the lease is lost.
  http::Limits limits{.deadline = start + timeout, .abort = m_abort, .interrupt = m_interrupt};
  const auto watched =
      m_watch_connection.exchange({.endpoint = endpoint, .path = "/v3/watch", .body = body, .token = m_token},
                                  limits, start + m_timeouts.connect,
                                  [&state](std::string_view data) { return !state.read(data); });
  // The stream goes on after the answer that ended the wait.
  m_watch_connection.close();
  if (state.end()) {
    return *state.end();
  }
  if (limits.aborted) {
    return WatchEnd::aborted;
  }
  if (limits.timed_out) {
    return WatchEnd::timed_out;
  }
  if (watched) {
    return WatchEnd::interrupted;
  }
  return Error(ErrorKind::unavailable, "lost the watch on etcd", endpoint, watched.error().detail());
}

} // namespace fasten::etcd
