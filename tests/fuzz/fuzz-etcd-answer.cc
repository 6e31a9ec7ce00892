// etcd's answers as the client reads them (client.h): an HTTP status and a
// body, to every request fasten-etcd makes, and the watch stream. Whatever
// the bytes: no crash, no exception (which would end the lease keeper's
// thread by std::terminate), and nothing taken as confirmed that etcd did
// not confirm: a lease has an ID and a TTL above 0, a key a create revision
// above 0.
//
// The input: two bytes of HTTP status (200 most of the time), then the body;
// the body is also fed to the watch stream in pieces whose sizes the body's
// own bytes pick. The body is also read as an HTTP head and as a chunk's
// size line (http.h), as the transport reads the bytes before the body.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <tuple>

#include "etcd/client.h"
#include "etcd/http.h"
#include "etcd/queue.h"

namespace {

using namespace fasten::etcd;

const std::string k_endpoint = "127.0.0.1:2379";
const std::string k_key = "lock/694d7b5b5e7f3c04";

void read_as_every_answer(const Reply& reply) {
  (void)lease_revoked(reply, k_endpoint);
  const auto answer = accepted_answer("/v3/kv/txn", reply, "", k_endpoint);
  if (!answer) {
    return;
  }
  if (const auto lease = granted_lease(answer.value(), k_endpoint);
      lease && (lease->id <= 0 || lease->ttl.count() <= 0)) {
    std::abort();
  }
  if (const auto ttl = renewed_ttl(answer.value(), k_endpoint);
      ttl && ttl.value() && ttl.value()->ttl.count() <= 0) {
    std::abort();
  }
  if (const auto revision = created_revision(answer.value(), k_key); revision && revision.value() <= 0) {
    std::abort();
  }
  (void)puts_made(answer.value());
  // The looks a waiter reads with its key's creation, or while its key is there.
  // A look is the queue, then its marks (vanished: holders that went
  // without leaving).
  if (const auto look = looked_at_creation(answer.value(), k_key, 0x694d7b5b5e7f3c04, 1, 2)) {
    (void)what_to_wait_for("lock", KeyKind::writer, 1, look->at(0).kvs, look->at(0).revision);
    (void)vanished("lock", look->at(0).kvs, look->at(1).kvs, excluding(KeyKind::writer), std::chrono::seconds(1));
  }
  if (const auto look = range_if_answer(answer.value(), k_key, 2); look && look.value()) {
    const auto& [keys, marks] = std::tie(look.value()->at(0), look.value()->at(1));
    (void)what_to_wait_for("lock", KeyKind::reader, 1, keys.kvs, keys.revision);
    (void)vanished("lock", keys.kvs, marks.kvs, slot_kind, std::chrono::seconds(1));
  }
  const auto range = parse_range(answer.value());
  // What a waiter and status make of the keys a range returns.
  for (const auto kind : {KeyKind::writer, KeyKind::reader, KeyKind::slot}) {
    (void)what_to_wait_for("lock", kind, 3, range.kvs, range.revision);
  }
  (void)choose_slot("lock", range.kvs, 3, 0x694d7b5b5e7f3c04);
  (void)status_from_keys("lock", range.kvs, range.kvs, std::chrono::seconds(1));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) {
    return 0;
  }
  const long status = data[0] < 0xc0 ? 200 : (data[0] - 0xc0) * 256L + data[1];
  const std::string body(reinterpret_cast<const char*>(data) + 2, size - 2);
  if (const auto reply = read_reply(status, body, k_endpoint)) {
    read_as_every_answer(reply.value());
  }
  if (const auto head = http::parse_head(body); head && (head->status < 100 || head->status > 999)) {
    std::abort();
  }
  (void)http::parse_chunk_size(body);
  for (const bool puts_too : {false, true}) {
    WatchStream stream(puts_too);
    for (std::size_t at = 0; at < body.size() && !stream.end();) {
      const std::size_t piece = 1 + static_cast<unsigned char>(body[at]) % 64;
      (void)stream.read(std::string_view(body).substr(at, piece));
      at += piece;
    }
  }
  return 0;
}
