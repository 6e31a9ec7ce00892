#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>

#include "etcd/client.h"
#include "etcd/http.h"
#include "etcd/lock.h"
#include "etcd/queue.h"
#include "etcd/url.h"
#include "lock/file-handle.h"

using namespace fasten;
using namespace fasten::etcd;

TEST_CASE("an etcd URL names its endpoints and the lock") {
  const auto url = parse_etcd_url("etcd://10.0.0.1:2379,db2:12379,[::1]:4001/jobs/backup");
  REQUIRE_MESSAGE(url.ok(), url.error().message());
  CHECK(url->endpoints == std::vector<std::string>{"10.0.0.1:2379", "db2:12379", "[::1]:4001"});
  CHECK(url->name == "jobs/backup");
}

TEST_CASE("https endpoints keep their scheme, in the URL and in the default list") {
  const auto url = parse_etcd_url("etcd://https://a:1,http://b:2,https://[::1]/jobs/x");
  REQUIRE_MESSAGE(url.ok(), url.error().message());
  CHECK(url->endpoints == std::vector<std::string>{"https://a:1", "b:2", "https://[::1]:2379"});
  CHECK(url->name == "jobs/x");
  const auto listed = parse_etcd_url("etcd:///y", "https://c:3,d");
  REQUIRE_MESSAGE(listed.ok(), listed.error().message());
  CHECK(listed->endpoints == std::vector<std::string>{"https://c:3", "d:2379"});
}

TEST_CASE("etcdctl's variables give the TLS files and the user, with the password in ETCDCTL_USER or apart") {
  setenv("ETCDCTL_CACERT", "/ca.pem", 1);
  setenv("ETCDCTL_CERT", "/c.pem", 1);
  setenv("ETCDCTL_KEY", "/k.pem", 1);
  setenv("ETCDCTL_INSECURE_SKIP_TLS_VERIFY", "true", 1);
  setenv("ETCDCTL_USER", "alice:pa:ss", 1);
  setenv("ETCDCTL_PASSWORD", "ignored", 1);
  auto security = Security::from_environment();
  CHECK(security.ca_file == "/ca.pem");
  CHECK(security.cert_file == "/c.pem");
  CHECK(security.key_file == "/k.pem");
  CHECK(security.skip_verify);
  CHECK(security.user == "alice");
  CHECK(security.password == "pa:ss");
  setenv("ETCDCTL_USER", "bob", 1);
  setenv("ETCDCTL_INSECURE_SKIP_TLS_VERIFY", "no", 1);
  security = Security::from_environment();
  CHECK(security.user == "bob");
  CHECK(security.password == "ignored");
  CHECK_FALSE(security.skip_verify);
  for (const char* name : {"ETCDCTL_CACERT", "ETCDCTL_CERT", "ETCDCTL_KEY",
                           "ETCDCTL_INSECURE_SKIP_TLS_VERIFY", "ETCDCTL_USER", "ETCDCTL_PASSWORD"}) {
    unsetenv(name);
  }
}

TEST_CASE("a client certificate without its key, or a key without its certificate, is refused naming both "
          "variables") {
  Security security;
  CHECK(security.check());
  security.cert_file = "/c.pem";
  const auto no_key = security.check();
  REQUIRE_FALSE(no_key);
  CHECK(no_key.error().kind() == fasten::ErrorKind::denied);
  CHECK(no_key.error().message().starts_with("a client certificate without its key: /c.pem: ETCDCTL_KEY"));
  security.key_file = "/k.pem";
  CHECK(security.check());
  security.cert_file.clear();
  const auto no_certificate = security.check();
  REQUIRE_FALSE(no_certificate);
  CHECK(no_certificate.error().message().starts_with(
      "a client key without its certificate: /k.pem: ETCDCTL_CERT"));
}

TEST_CASE("an endpoint without a port gets etcd's client port") {
  const auto url = parse_etcd_url("etcd://db,[::1]/x");
  REQUIRE(url.ok());
  CHECK(url->endpoints == std::vector<std::string>{"db:2379", "[::1]:2379"});
}

TEST_CASE("an etcd URL without hosts takes the endpoints from the default list") {
  const auto url = parse_etcd_url("etcd:///nightly", "http://a:1,b:2/");
  REQUIRE_MESSAGE(url.ok(), url.error().message());
  CHECK(url->endpoints == std::vector<std::string>{"a:1", "b:2"});
  CHECK(url->name == "nightly");
  const auto missing = parse_etcd_url("etcd:///nightly");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message().find("FASTEN_ETCD_ENDPOINTS") != std::string::npos);
}

TEST_CASE("malformed etcd URLs are refused with the reason") {
  for (const char* bad :
       {"etcd://h:1", "etcd://h:1/", "etcd://h:0/x", "etcd://h:65536/x", "etcd://h:port/x", "etcd://h:1,/x",
        "etcd://:1/x", "etcd://[::1/x", "etcd://h:1/x/", "etcd://https://h:1", "etcd://https:///x"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_etcd_url(bad).ok());
  }
  CHECK(parse_etcd_url("etcd://h:0/x").error().message() ==
        "bad etcd endpoint: h:0: the port must be a number from 1 to 65535");
  CHECK(parse_etcd_url("etcd://h:1/x/").error().message() ==
        "bad etcd lock: etcd://h:1/x/: NAME must not end with '/'");
  // NAME~fasten-marks/ holds lock NAME's marks.
  CHECK(parse_etcd_url("etcd://h:1/x~fasten-marks").error().message() ==
        "bad etcd lock: etcd://h:1/x~fasten-marks: NAME must not contain '~fasten-marks'");
  CHECK_FALSE(parse_etcd_url("etcd://h:1/a/b~fasten-marks/c").ok());
  CHECK(parse_etcd_url("etcd://h:1/x~fasten").ok());
  CHECK(parse_etcd_url("etcd:///x", "a:1,").error().message() ==
        "FASTEN_ETCD_ENDPOINTS: bad etcd endpoint list: a:1,: it ends with a comma");
  CHECK_FALSE(is_etcd_url("/run/etcd://x"));
  CHECK(is_etcd_url("etcd://h/x"));
}

TEST_CASE("base64 round-trips every byte and refuses what is not base64") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("a/b") == "YS9i");
  std::string all;
  for (int c = 0; c < 256; ++c) {
    all += static_cast<char>(c);
  }
  for (std::size_t size = 0; size < 8; ++size) {
    CHECK(base64_decode(base64_encode(all.substr(250 - size))) == all.substr(250 - size));
  }
  CHECK(base64_decode(base64_encode(all)) == all);
  CHECK_FALSE(base64_decode("Zg=").has_value());
  CHECK_FALSE(base64_decode("Z===").has_value());
  CHECK_FALSE(base64_decode("Zm=v").has_value());
  CHECK_FALSE(base64_decode("Zm9!").has_value());
}

TEST_CASE("the range of a prefix ends just past its last key") {
  CHECK(prefix_end("lock/") == "lock0");
  CHECK(prefix_end(std::string("a\xff", 2)) == "b");
  CHECK(prefix_end(std::string("\xff\xff", 2)) == std::string(1, '\0'));
}

TEST_CASE("exclusive and write keys look like etcdctl lock's, read and slot keys are apart") {
  CHECK(queue_key("jobs/backup", KeyKind::writer, 0x694d81a1b2c3d4e5) == "jobs/backup/694d81a1b2c3d4e5");
  CHECK(queue_key("x", KeyKind::reader, 0x10) == "x/read/10");
  CHECK(queue_key("x", KeyKind::slot, 0x10) == "x/slot/10");
  CHECK(slot_claim_key("x", 3) == "x/slot-claim/3");
  CHECK(kind_of("x", "x/read/10") == KeyKind::reader);
  CHECK(kind_of("x", "x/slot/10") == KeyKind::slot);
  CHECK(kind_of("x", "x/slot-claim/0") == KeyKind::slot_claim);
  CHECK(kind_of("x", "x/10") == KeyKind::writer);
  CHECK(kind_of("x", "xy/read/10") == KeyKind::writer);
  CHECK(kind_of("x", "x/slotted") == KeyKind::writer);
}

TEST_CASE("the gateway's requests are built as it reads them") {
  const auto range = range_body({.key = "a/",
                                 .range_end = "a0",
                                 .max_create_revision = 41,
                                 .order = Order::newest_first,
                                 .limit = 1,
                                 .keys_only = true});
  CHECK(range == Json::parse(R"({"key": "YS8=", "range_end": "YTA=", "max_create_revision": "41",
                                 "sort_target": "CREATE", "sort_order": "DESCEND", "limit": "1",
                                 "keys_only": true})"));
  CHECK(range_body({.key = "k"}) == Json::parse(R"({"key": "aw=="})"));
  const auto txn = create_key_body("a/b", "v", 7);
  CHECK(txn["compare"][0] == Json::parse(R"({"target": "CREATE", "key": "YS9i", "result": "EQUAL",
                                             "create_revision": "0"})"));
  CHECK(txn["success"][0]["request_put"] == Json::parse(R"({"key": "YS9i", "value": "dg==", "lease": "7"})"));
  CHECK(txn["failure"][0]["request_range"]["key"] == "YS9i");
  CHECK(txn["success"].size() == 1);
  // With a look at the queue: read after the put, in the same transaction.
  const auto looking =
      create_key_body("a/b", "v", 7, {{.key = "m", .value = "w"}}, {RangeRequest{.key = "a/", .range_end = "a0", .limit = 2}});
  CHECK(looking["success"].size() == 3);
  CHECK(looking["success"][0]["request_put"]["key"] == "YS9i");
  // The mark: on no lease.
  CHECK(looking["success"][1]["request_put"] == Json::parse(R"({"key": "bQ==", "value": "dw=="})"));
  CHECK(looking["success"][2]["request_range"] ==
        Json::parse(R"({"key": "YS8=", "range_end": "YTA=", "limit": "2"})"));
  CHECK(looking["failure"] == txn["failure"]);
  const auto own =
      range_if_body({.key = "a/b", .create_revision = 41, .lease = 7}, {{.key = "a/", .range_end = "a0"}});
  CHECK(own == Json::parse(R"({"compare": [
      {"target": "CREATE", "key": "YS9i", "result": "EQUAL", "create_revision": "41"},
      {"target": "LEASE", "key": "YS9i", "result": "EQUAL", "lease": "7"}],
      "success": [{"request_range": {"key": "YS8=", "range_end": "YTA="}}]})"));
  CHECK(watch_body({.key = "a/b", .start_revision = 12}) ==
        Json::parse(R"({"create_request": {"key": "YS9i", "start_revision": "12"}})"));
  CHECK(watch_body({.key = "a/", .range_end = "a0", .start_revision = 3}) ==
        Json::parse(R"({"create_request": {"key": "YS8=", "range_end": "YTA=", "start_revision": "3"}})"));
  const auto claim = put_if_body({{.key = "a", .revision = 0}, {.key = "b", .revision = 9}},
                                 {{.key = "a", .value = "v", .lease = 7}});
  CHECK(claim == Json::parse(R"({"compare": [
      {"target": "CREATE", "key": "YQ==", "result": "EQUAL", "create_revision": "0"},
      {"target": "CREATE", "key": "Yg==", "result": "EQUAL", "create_revision": "9"}],
      "success": [{"request_put": {"key": "YQ==", "value": "dg==", "lease": "7"}}]})"));
  CHECK(put_if_body({}, {}, {"a", "b"}) == Json::parse(R"({"compare": [], "success": [
      {"request_delete_range": {"key": "YQ=="}}, {"request_delete_range": {"key": "Yg=="}}]})"));
  CHECK(ranges_body({{.key = "a"}, {.key = "b", .count_only = true}}) == Json::parse(R"({"success": [
      {"request_range": {"key": "YQ=="}}, {"request_range": {"key": "Yg==", "count_only": true}}]})"));
  CHECK(parse_range(Json::parse(R"({"count": "12"})")).count == 12);
  CHECK(parse_range(Json::parse(R"({})")).count == 0);
}

TEST_CASE("the gateway's answers are read with 64-bit numbers as strings and zeros left out") {
  const auto answer = Json::parse(R"({"header": {"revision": "9"}, "kvs": [
      {"key": "YS8x", "create_revision": "5", "mod_revision": "5", "lease": "8002511807934724615"},
      {"key": "YS8y", "create_revision": 7, "value": "dg=="}]})");
  const auto range = parse_range(answer);
  CHECK(range.revision == 9);
  REQUIRE(range.kvs.size() == 2);
  CHECK(range.kvs[0].key == "a/1");
  CHECK(range.kvs[0].value == "");
  CHECK(range.kvs[0].lease == 8002511807934724615);
  CHECK(range.kvs[1].create_revision == 7);
  CHECK(range.kvs[1].value == "v");
  CHECK(range.kvs[1].lease == 0);
  CHECK(parse_range(Json::parse(R"({"header": {"revision": "3"}})")).kvs.empty());
}

TEST_CASE("a renewal and a range say the raft term they were answered in, 0 when left out") {
  const auto renewed =
      renewed_ttl(Json::parse(R"({"result": {"header": {"raft_term": "4"}, "TTL": "3"}})"), "e:1");
  CHECK(renewed.value()->raft_term == 4);
  CHECK(renewed_ttl(Json::parse(R"({"result": {"TTL": "3"}})"), "e:1").value()->raft_term == 0);
  CHECK(parse_range(Json::parse(R"({"header": {"revision": "3", "raft_term": "5"}})")).raft_term == 5);
  CHECK(parse_range(Json::parse(R"({"header": {"revision": "3"}})")).raft_term == 0);
}

TEST_CASE("status reads holders from the oldest keys, and the rest as waiting") {
  const auto value = holder_value({.host = "db1", .pid = 42, .command = "backup.sh --full"});
  SUBCASE("no keys: free") {
    CHECK(status_from_keys("x", {}, {}, std::chrono::seconds(1)).state == LockState::free);
  }
  SUBCASE("a writer first: exclusive, everyone else waits") {
    const auto status = status_from_keys("x", {{"x/1", value, 5, 5, 1}, {"x/read/2", "", 6, 6, 2}}, {},
                                         std::chrono::seconds(1));
    CHECK(status.state == LockState::exclusive);
    CHECK(status.waiting == 1);
    REQUIRE(status.holders.size() == 1);
    CHECK(status.holders[0].pid == 42);
    CHECK(status.holders[0].host == "db1");
    CHECK(status.holders[0].command == "backup.sh --full");
  }
  SUBCASE("readers first: shared by them, up to the first writer") {
    const auto status = status_from_keys("x",
                                         {{"x/read/1", value, 5, 5, 1},
                                          {"x/read/2", "", 6, 6, 2},
                                          {"x/3", "", 7, 7, 3},
                                          {"x/read/4", "", 8, 8, 4}},
                                         {}, std::chrono::seconds(1));
    CHECK(status.state == LockState::shared);
    CHECK(status.holds == 2);
    CHECK(status.waiting == 2);
    REQUIRE(status.holders.size() == 2);
    // etcdctl lock stores nothing: such a holder cannot be seen.
    CHECK_FALSE(status.holders[1].pid.has_value());
  }
  SUBCASE(
      "slot holders: shared, by those that claimed a slot, with readers; claims are not keys of the queue") {
    const auto held = holder_value({.host = "db1", .pid = 7, .slots = 3, .slot = 2});
    const auto waiting = holder_value({.host = "db1", .pid = 8, .slots = 3});
    const auto status = status_from_keys("x",
                                         {{"x/slot/1", held, 5, 9, 1},
                                          {"x/read/2", "", 6, 6, 2},
                                          {"x/slot/3", waiting, 7, 7, 3},
                                          {"x/slot-claim/2", "x/slot/1", 9, 9, 1},
                                          {"x/4", "", 10, 10, 4},
                                          {"x/slot/5", waiting, 11, 11, 5}},
                                         {}, std::chrono::seconds(1));
    CHECK(status.state == LockState::shared);
    CHECK(status.holds == 2);
    CHECK(status.slots_held == 1);
    CHECK(status.slots == 3);
    CHECK(status.waiting == 3);
    REQUIRE(status.holders.size() == 2);
    CHECK(status.holders[0].slot == 2);
    CHECK(status.holders[0].pid == 7);
    CHECK_FALSE(status.holders[1].slot.has_value());
  }
}

namespace {

std::vector<KeyValue> newest_first(std::vector<std::string> keys, const std::string& value = "") {
  std::vector<KeyValue> older;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    older.push_back({.key = keys[i], .value = value, .create_revision = static_cast<std::int64_t>(90 - i)});
  }
  return older;
}

} // namespace

TEST_CASE("a writer waits for the newest older key, a reader for the newest older writer") {
  CHECK_FALSE(what_to_wait_for("x", KeyKind::writer, 1, {}, 100).has_value());
  const auto writer = what_to_wait_for("x", KeyKind::writer, 1, newest_first({"x/slot/2"}), 100);
  REQUIRE(writer.has_value());
  CHECK(writer->key == "x/slot/2");
  CHECK(writer->range_end.empty());
  CHECK(writer->start_revision == 101);
  CHECK_FALSE(writer->puts_too);
  CHECK_FALSE(what_to_wait_for("x", KeyKind::reader, 1, newest_first({"x/slot/2", "x/read/1"}), 100));
  const auto reader =
      what_to_wait_for("x", KeyKind::reader, 1, newest_first({"x/read/3", "x/2", "x/1"}), 100);
  REQUIRE(reader.has_value());
  CHECK(reader->key == "x/2");
}

TEST_CASE(
    "a slot waiter waits for a writer, then for a slot key to go, or for the waiter just ahead to move") {
  const auto three = holder_value({.pid = 1, .slots = 3});
  SUBCASE("fewer than N older slot keys, with readers and claims among them: it holds") {
    CHECK_FALSE(
        what_to_wait_for("x", KeyKind::slot, 3, newest_first({"x/slot-claim/0", "x/slot/2", "x/read/1"}), 9));
  }
  SUBCASE("an older writer: its deletion, though slots are free") {
    const auto wait = what_to_wait_for("x", KeyKind::slot, 3, newest_first({"x/slot/2", "x/1"}), 9);
    REQUIRE(wait.has_value());
    CHECK(wait->key == "x/1");
    CHECK_FALSE(wait->puts_too);
  }
  SUBCASE("N older slot keys: first in line, the deletion of any slot key") {
    const auto wait =
        what_to_wait_for("x", KeyKind::slot, 2, newest_first({"x/slot/2", "x/slot/1"}, three), 9);
    REQUIRE(wait.has_value());
    CHECK(wait->key == "x/slot/");
    CHECK(wait->range_end == "x/slot0");
    CHECK_FALSE(wait->puts_too);
  }
  SUBCASE("more than N, the one ahead with the same N: its claim or its deletion") {
    const auto wait = what_to_wait_for(
        "x", KeyKind::slot, 3, newest_first({"x/slot/4", "x/slot/3", "x/slot/2", "x/slot/1"}, three), 9);
    REQUIRE(wait.has_value());
    CHECK(wait->key == "x/slot/4");
    CHECK(wait->range_end.empty());
    CHECK(wait->puts_too);
    CHECK(wait->start_revision == 10);
  }
  SUBCASE("more than N, the one ahead with another N: every slot key") {
    const auto wait =
        what_to_wait_for("x", KeyKind::slot, 2, newest_first({"x/slot/4", "x/slot/3", "x/slot/2"}, three), 9);
    REQUIRE(wait.has_value());
    CHECK(wait->key == "x/slot/");
  }
}

TEST_CASE("a slot holder takes the lowest unclaimed slot below its N, or the one it claimed already") {
  const auto claims = [](std::vector<std::pair<std::string, std::int64_t>> keys) {
    std::vector<KeyValue> kvs;
    for (const auto& [key, lease] : keys) {
      kvs.push_back({.key = key, .lease = lease});
    }
    return kvs;
  };
  CHECK(choose_slot("x", {}, 3, 5)->slot == 0);
  const auto gap = choose_slot("x", claims({{"x/slot-claim/0", 1}, {"x/slot-claim/2", 2}}), 3, 5);
  REQUIRE(gap.has_value());
  CHECK(gap->slot == 1);
  CHECK_FALSE(gap->claimed);
  CHECK_FALSE(choose_slot("x", claims({{"x/slot-claim/0", 1}, {"x/slot-claim/1", 2}}), 2, 5).has_value());
  const auto mine = choose_slot("x", claims({{"x/slot-claim/0", 1}, {"x/slot-claim/1", 5}}), 2, 5);
  REQUIRE(mine.has_value());
  CHECK(mine->slot == 1);
  CHECK(mine->claimed);
  // Keys that are no claim of a slot are not counted.
  CHECK(choose_slot("x", claims({{"x/slot-claim/zero", 1}, {"x/slot-claim/-1", 2}}), 1, 5)->slot == 0);
  // Not even one shorter than the claims' prefix (which an etcd that
  // answers badly can return; found by tests/fuzz/fuzz-etcd-answer).
  CHECK(choose_slot("x", claims({{"x", 1}, {"x/1", 2}}), 1, 5)->slot == 0);
}

TEST_CASE("a mark whose key is gone is a vanished holder's, waited out by those it excluded") {
  CHECK(mark_prefix("x") == "x~fasten-marks/");
  CHECK(mark_key("x", "x/read/a1") == "x~fasten-marks/read/a1");
  CHECK(mark_key("x", "x/slot/") == "x~fasten-marks/slot/");
  CHECK(Json::parse(mark_value(std::chrono::seconds(7))) == Json::parse(R"({"ttl": 7})"));
  const std::vector<KeyValue> keys{{.key = "x/a2"}, {.key = "x/read/b1"}};
  const std::vector<KeyValue> marks{
      {.key = "x~fasten-marks/a2", .value = R"({"ttl": 9})", .create_revision = 2},
      {.key = "x~fasten-marks/read/b1", .value = R"({"ttl": 9})", .create_revision = 3},
      {.key = "x~fasten-marks/read/c1", .value = R"({"ttl": 4})", .create_revision = 4},
      {.key = "x~fasten-marks/d1", .value = "not JSON", .create_revision = 5},
      // On a lease: armed by a waiter that found it, to go by itself.
      {.key = "x~fasten-marks/read/e1", .value = R"({"ttl": 5})", .create_revision = 6, .lease = 8},
  };
  // A writer waits out any holder that vanished, armed or not; one with no
  // TTL of its own is given the waiter's.
  const auto any = vanished("x", keys, marks, excluding(KeyKind::writer), std::chrono::seconds(3));
  REQUIRE(any.holders.size() == 3);
  CHECK(any.holders[0].key == "x/read/c1");
  CHECK(any.holders[0].mark.create_revision == 4);
  CHECK(any.holders[1].key == "x/d1");
  CHECK(any.holders[2].key == "x/read/e1");
  CHECK(any.holders[2].mark.lease == 8);
  CHECK(any.ttl == std::chrono::seconds(5));
  // A reader or a slot holder only a writer.
  const auto writers = vanished("x", keys, marks, excluding(KeyKind::reader), std::chrono::seconds(3));
  REQUIRE(writers.holders.size() == 1);
  CHECK(writers.holders[0].key == "x/d1");
  CHECK(writers.ttl == std::chrono::seconds(3));
  CHECK(vanished("x", keys, marks, slot_kind, std::chrono::seconds(3)).holders.empty());
  CHECK(vanished("x", keys, {}, excluding(KeyKind::writer), std::chrono::seconds(3)).holders.empty());
}

TEST_CASE("a mark's TTL is read as a holder's --ttl can be, whatever the value says") {
  const auto ttl_of = [](const char* value) {
    const std::vector<KeyValue> marks{{.key = "x~fasten-marks/a1", .value = value, .create_revision = 2}};
    return vanished("x", {}, marks, excluding(KeyKind::writer), std::chrono::seconds(3)).ttl;
  };
  CHECK(ttl_of(R"({"ttl": 86400})") == std::chrono::seconds(86400));
  // Longer than any holder's: the longest a holder can have.
  CHECK(ttl_of(R"({"ttl": 2000000000})") == std::chrono::seconds(86400));
  CHECK(ttl_of(R"({"ttl": 4294967297})") == std::chrono::seconds(86400));
  CHECK(ttl_of(R"({"ttl": 18446744073709551615})") == std::chrono::seconds(86400));
  // None to be had: the waiter's own.
  CHECK(ttl_of(R"({"ttl": 0})") == std::chrono::seconds(3));
  CHECK(ttl_of(R"({"ttl": -5})") == std::chrono::seconds(3));
  CHECK(ttl_of(R"({"ttl": 2.5})") == std::chrono::seconds(3));
  CHECK(ttl_of(R"({"ttl": "9"})") == std::chrono::seconds(3));
}

TEST_CASE("status lists the holders that vanished, and counts a waiter waiting one out as waiting") {
  // Marks whose keys are gone: a writer's (created at 2), a reader's (at 4),
  // a slot holder's (at 6, its TTL missing: the fallback's).
  std::vector<KeyValue> marks{
      {.key = "x~fasten-marks/a2", .value = R"({"ttl": 9})", .create_revision = 2},
      {.key = "x~fasten-marks/read/b4", .value = R"({"ttl": 5})", .create_revision = 4},
      {.key = "x~fasten-marks/slot/c6", .value = "{}", .create_revision = 6},
      // On a lease: armed by a waiter that found it, a writer's (at 7).
      {.key = "x~fasten-marks/e7", .value = R"({"ttl": 99})", .create_revision = 7, .lease = 8},
      // Marks of live keys.
      {.key = "x~fasten-marks/read/r3", .value = R"({"ttl": 9})", .create_revision = 3},
      {.key = "x~fasten-marks/w8", .value = R"({"ttl": 9})", .create_revision = 8},
  };
  const auto seconds = [](int n) { return std::chrono::seconds(n); };
  SUBCASE("no live keys: free, with the vanished holders by kind, in the order they queued") {
    const auto status = status_from_keys("x", {}, {marks.begin(), marks.begin() + 4}, seconds(3));
    CHECK(status.state == LockState::free);
    CHECK(status.waiting == 0);
    REQUIRE(status.vanished.size() == 4);
    CHECK(status.vanished[0].kind == VanishedHolder::Kind::writer);
    CHECK(status.vanished[0].ttl == seconds(9));
    CHECK(status.vanished[1].kind == VanishedHolder::Kind::reader);
    CHECK(status.vanished[1].ttl == seconds(5));
    CHECK(status.vanished[2].kind == VanishedHolder::Kind::slot);
    CHECK(status.vanished[2].ttl == seconds(3));
    CHECK(status.vanished[3].kind == VanishedHolder::Kind::writer);
    CHECK(status.vanished[3].ttl == seconds(99));
  }
  SUBCASE("a reader and a writer whose turn came after a vanished writer wait it out: they wait") {
    const auto status =
        status_from_keys("x", {{"x/read/r3", "", 3, 3, 1}, {"x/w8", "", 8, 8, 2}}, marks, seconds(3));
    CHECK(status.state == LockState::free);
    CHECK(status.holds == 0);
    CHECK(status.waiting == 2);
    CHECK(status.vanished.size() == 4);
  }
  SUBCASE("a reader waits out no vanished reader, a holder none that queued after it") {
    const std::vector<KeyValue> readers_marks{marks[1], marks[4]};
    auto status = status_from_keys("x", {{"x/read/r3", "", 3, 3, 1}}, readers_marks, seconds(3));
    CHECK(status.state == LockState::shared);
    CHECK(status.holds == 1);
    CHECK(status.vanished.size() == 1);
    status = status_from_keys("x", {{"x/read/r5", "", 5, 5, 1}}, {marks[1]}, seconds(3));
    CHECK(status.state == LockState::shared);
    CHECK(status.waiting == 0);
  }
  SUBCASE("a writer waits out a vanished reader") {
    const auto status = status_from_keys("x", {{"x/w8", "", 8, 8, 2}}, {marks[1], marks[5]}, seconds(3));
    CHECK(status.state == LockState::free);
    CHECK(status.waiting == 1);
    REQUIRE(status.vanished.size() == 1);
    CHECK(status.vanished[0].kind == VanishedHolder::Kind::reader);
  }
  SUBCASE("every mark with its key: none vanished") {
    const auto status = status_from_keys("x", {{"x/read/r3", "", 3, 3, 1}}, {marks[4]}, seconds(3));
    CHECK(status.vanished.empty());
    CHECK(status.state == LockState::shared);
  }
}

TEST_CASE("fields of the wrong type in etcd's answers read as missing, never as an exception") {
  const auto answer = Json::parse(R"({"header": {"revision": true}, "succeeded": "yes", "message": 5,
      "kvs": [5, {"key": 7, "create_revision": "12abc", "lease": "-"}]})");
  CHECK(int_field(answer["header"], "revision") == 0);
  CHECK(int_field(Json::parse(R"({"r": "12abc"})"), "r") == 0);
  CHECK(int_field(Json::parse(R"({"r": " 12"})"), "r") == 0);
  CHECK(int_field(Json::parse(R"({"r": "-12"})"), "r") == -12);
  const auto range = parse_range(answer);
  REQUIRE(range.kvs.size() == 2);
  CHECK(range.kvs[1].key == "");
  CHECK(range.kvs[1].create_revision == 0);
  CHECK_FALSE(puts_made(answer));
  CHECK_FALSE(puts_made(Json::array()));
  const auto refused = accepted_answer("/v3/kv/txn", Reply{500, answer}, "", "e:1");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().kind() == ErrorKind::unavailable);
  CHECK(lease_revoked(Reply{500, Json::parse(R"({"code": "5"})")}, "e:1").ok());
  CHECK_FALSE(lease_revoked(Reply{500, Json::parse(R"({"code": [5]})")}, "e:1").ok());
  // A holder's value that another program wrote, with a command that is no string.
  const auto status = status_from_keys(
      "x", {{.key = "x/1", .value = R"({"command": 5, "host": [], "pid": 3})"}}, {}, std::chrono::seconds(1));
  REQUIRE(status.holders.size() == 1);
  CHECK(status.holders[0].command == "");
  CHECK(status.holders[0].pid == 3);
}

TEST_CASE("a lease is granted only with an ID and a TTL above 0") {
  CHECK(granted_lease(Json::parse(R"({"ID": "7", "TTL": "2"})"), "e:1")->ttl == std::chrono::seconds(2));
  for (const char* text : {R"({"ID": "0", "TTL": "10"})", R"({"ID": "-7", "TTL": "10"})",
                           R"({"ID": "7", "TTL": "-5"})", R"({"ID": "7"})", R"({"ID": 7.5, "TTL": "10"})",
                           R"({"error": "etcdserver: too many requests"})", "[]", "null"}) {
    const auto lease = granted_lease(Json::parse(text), "e:1");
    CHECK_MESSAGE(!lease.ok(), text);
  }
  CHECK(granted_lease(Json::parse(R"({"error": "busy"})"), "e:1").error().message().find("busy") !=
        std::string::npos);
}

TEST_CASE("a renewal without a result is an error, and one with no TTL or 0 says the lease is gone") {
  CHECK(renewed_ttl(Json::parse(R"({"result": {"TTL": "9"}})"), "e:1").value()->ttl ==
        std::chrono::seconds(9));
  CHECK_FALSE(renewed_ttl(Json::parse(R"({"result": {"ID": "7"}})"), "e:1").value().has_value());
  CHECK_FALSE(renewed_ttl(Json::parse(R"({"result": {"TTL": "0"}})"), "e:1").value().has_value());
  CHECK_FALSE(renewed_ttl(Json::parse(R"({"result": 5})"), "e:1").ok());
  CHECK_FALSE(renewed_ttl(Json::parse(R"({"error": "x"})"), "e:1").ok());
}

TEST_CASE("a key counts as created only at a revision above 0, and only the key asked for") {
  CHECK(created_revision(Json::parse(R"({"succeeded": true, "header": {"revision": "6"}})"), "x/1").value() ==
        6);
  CHECK_FALSE(
      created_revision(Json::parse(R"({"succeeded": true, "header": {"revision": "six"}})"), "x/1").ok());
  CHECK_FALSE(created_revision(Json::parse(R"({"succeeded": true})"), "x/1").ok());
  CHECK_FALSE(
      created_revision(Json::parse(R"({"succeeded": "true", "header": {"revision": "6"}})"), "x/1").ok());
  // eC8x is "x/1", eC8y "x/2".
  CHECK(created_revision(Json::parse(R"({"responses": [{"response_range": {"kvs": [
      {"key": "eC8x", "create_revision": "4"}]}}]})"),
                         "x/1")
            .value() == 4);
  CHECK_FALSE(created_revision(Json::parse(R"({"responses": [{"response_range": {"kvs": [
      {"key": "eC8y", "create_revision": "4"}]}}]})"),
                               "x/1")
                  .ok());
  CHECK_FALSE(created_revision(Json::parse(R"({"responses": [5]})"), "x/1").ok());
}

TEST_CASE("the look read with a key's creation leaves the key out, and counts only with the key as made") {
  // eC8x is "x/1", eC8y "x/2".
  const auto answer = [](const char* own) {
    return Json::parse(std::string(R"({"succeeded": true, "header": {"revision": "9", "raft_term": "3"},
        "responses": [{"response_put": {}}, {"response_range": {"header": {"revision": "1"}, "kvs": [)") +
                       own + R"(, {"key": "eC8x", "create_revision": "4", "lease": "5"}]}}]})");
  };
  const auto look =
      looked_at_creation(answer(R"({"key": "eC8y", "create_revision": "9", "lease": "7"})"), "x/2", 7, 0, 1);
  REQUIRE(look.has_value());
  REQUIRE(look->size() == 1);
  CHECK(look->front().revision == 9);
  CHECK(look->front().raft_term == 3);
  REQUIRE(look->front().kvs.size() == 1);
  CHECK(look->front().kvs.front().key == "x/1");
  // The key on another lease, at another revision, or not there: not trusted.
  CHECK_FALSE(
      looked_at_creation(answer(R"({"key": "eC8y", "create_revision": "9", "lease": "1"})"), "x/2", 7, 0, 1));
  CHECK_FALSE(
      looked_at_creation(answer(R"({"key": "eC8y", "create_revision": "8", "lease": "7"})"), "x/2", 7, 0, 1));
  CHECK_FALSE(
      looked_at_creation(answer(R"({"key": "eC8z", "create_revision": "9", "lease": "7"})"), "x/2", 7, 0, 1));
  // Made by an earlier try, or no read in the answer: the caller reads.
  CHECK_FALSE(looked_at_creation(Json::parse(R"({"header": {"revision": "9"}, "responses": [
      {"response_range": {"kvs": []}}, {"response_range": {"kvs": []}}]})"),
                                 "x/2", 7, 0, 1));
  CHECK_FALSE(looked_at_creation(Json::parse(R"({"succeeded": true, "header": {"revision": "9"},
      "responses": [{"response_put": {}}]})"),
                                 "x/2", 7, 0, 1));
  CHECK_FALSE(looked_at_creation(Json::parse(R"({"succeeded": true, "header": {"revision": "9"},
      "responses": [{"response_put": {}}, {"response_put": {}}]})"),
                                 "x/2", 7, 0, 1));
}

TEST_CASE("a look made only while the holder's key is there reads as lost when the key is not") {
  const auto read = range_if_answer(Json::parse(R"({"succeeded": true, "header": {"revision": "12"},
      "responses": [{"response_range": {"kvs": [{"key": "eC8x", "create_revision": "4"}]}}]})"),
                                    "x/2");
  REQUIRE(read.ok());
  REQUIRE(read.value().has_value());
  REQUIRE(read.value()->size() == 1);
  CHECK(read.value()->front().revision == 12);
  CHECK(read.value()->front().kvs.size() == 1);
  const auto gone = range_if_answer(Json::parse(R"({"header": {"revision": "12"}})"), "x/2");
  REQUIRE(gone.ok());
  CHECK_FALSE(gone.value().has_value());
  CHECK_FALSE(range_if_answer(Json::parse(R"({"succeeded": "true"})"), "x/2").value().has_value());
  CHECK_FALSE(range_if_answer(Json::parse(R"({"succeeded": true, "responses": [5]})"), "x/2").ok());
  CHECK_FALSE(range_if_answer(Json::parse(R"({"succeeded": true})"), "x/2").ok());
}

TEST_CASE("an answer that is not JSON, or nested deeper than etcd's, is an error") {
  CHECK(read_reply(200, R"({"a": [1, {"b": "[[[["}]})", "e:1").ok());
  CHECK_FALSE(read_reply(200, R"({"ID": "1", "TTL": )", "e:1").ok());
  CHECK_FALSE(read_reply(200, std::string(100, '[') + std::string(100, ']'), "e:1").ok());
  const auto long_one = read_reply(200, std::string(5000, 'x'), "e:1");
  REQUIRE_FALSE(long_one.ok());
  CHECK(long_one.error().message().size() < 400);
}

TEST_CASE("the watch stream ends at a deletion, at an error or a cancel, or at a line too long") {
  WatchStream deleted(false);
  CHECK_FALSE(deleted
                  .read(R"({"result": {"created": true}})"
                        "\n")
                  .has_value());
  CHECK_FALSE(deleted
                  .read(R"({"result": {"events": [{"kv": {}}]}})"
                        "\n")
                  .has_value()); // a put
  CHECK_FALSE(deleted
                  .read(R"({"result": {"events": [{"type": 5}]}})"
                        "\n")
                  .has_value());
  CHECK_FALSE(deleted.read(R"({"result": {"events": [{"type": "DEL)").has_value());
  CHECK(deleted.read(R"(ETE"}]}})"
                     "\n") == WatchEnd::changed);
  WatchStream put(true);
  CHECK(put.read(R"({"result": {"events": [5]}})"
                 "\n") == WatchEnd::changed);
  for (const char* line :
       {R"({"error": {"code": 14}})", R"({"result": 5})", R"({"result": {"canceled": true}})",
        R"({"result": {"compact_revision": "3"}})", "[[["}) {
    WatchStream stream(false);
    CHECK_MESSAGE(stream.read(std::string(line) + "\n") == WatchEnd::interrupted, line);
  }
  WatchStream endless(false);
  const std::string megabyte(1 << 20, ' ');
  std::optional<WatchEnd> end;
  for (int i = 0; i < 9 && !end; ++i) {
    end = endless.read(megabyte);
  }
  CHECK(end == WatchEnd::interrupted);
}

namespace {

/// A TCP port on loopback that hangs. Either it completes connections (the
/// kernel does, from the listen backlog) but never reads or answers, or its
/// backlog is full, so that the kernel drops new connections' SYNs and
/// connecting hangs.
struct SilentEndpoint {
  FileHandle listener;
  std::vector<FileHandle> fillers;
  std::string address;
};

enum class Silence { never_answers, never_accepts };

SilentEndpoint silent_endpoint(Silence silence) {
  SilentEndpoint endpoint{FileHandle(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), {}, {}};
  REQUIRE(endpoint.listener.get() >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto* generic = reinterpret_cast<sockaddr*>(&address);
  REQUIRE(bind(endpoint.listener.get(), generic, sizeof address) == 0);
  REQUIRE(listen(endpoint.listener.get(), silence == Silence::never_answers ? 16 : 0) == 0);
  socklen_t size = sizeof address;
  REQUIRE(getsockname(endpoint.listener.get(), generic, &size) == 0);
  if (silence == Silence::never_accepts) {
    // A backlog of 0 holds one connection: two fill it.
    for (int i = 0; i < 2; ++i) {
      endpoint.fillers.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      (void)connect(endpoint.fillers.back().get(), generic, sizeof address);
    }
  }
  endpoint.address = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  return endpoint;
}

} // namespace

TEST_CASE("a request has one deadline across all its endpoints, connecting included") {
  for (const auto silence : {Silence::never_answers, Silence::never_accepts}) {
    const std::string how =
        silence == Silence::never_answers ? "that accept but never answer" : "that never accept";
    std::vector<SilentEndpoint> silent;
    std::vector<std::string> endpoints;
    for (int i = 0; i < 3; ++i) {
      silent.push_back(silent_endpoint(silence));
      endpoints.push_back(silent.back().address);
    }
    Client client(endpoints);
    const Milliseconds deadline{900};
    const auto timed = [&](const char* what, auto request) {
      const auto start = std::chrono::steady_clock::now();
      const bool answered = request();
      const auto took = std::chrono::duration_cast<Milliseconds>(std::chrono::steady_clock::now() - start);
      MESSAGE(std::string(what) << " on 3 endpoints " << how << ", deadline " << deadline.count()
                                << " ms: gave up after " << took.count() << " ms");
      CHECK_FALSE(answered);
      CHECK(took >= deadline - Milliseconds(50));
      // Not 3 × the deadline; generous, for a loaded machine.
      CHECK(took < 2 * deadline);
    };
    timed("a range", [&] { return client.range({.key = "x"}, etcd::Deadline(deadline)).ok(); });
    timed("a lease renewal", [&] { return client.keep_alive(1, etcd::Deadline(deadline)).ok(); });
  }
}

TEST_CASE("an endpoint is taken apart into host, port and whether it wants TLS") {
  const auto plain = http::address_of("10.0.0.1:2379");
  CHECK(plain.host == "10.0.0.1");
  CHECK(plain.port == "2379");
  CHECK_FALSE(plain.tls);
  const auto v6 = http::address_of("https://[::1]:4001");
  CHECK(v6.host == "::1");
  CHECK(v6.port == "4001");
  CHECK(v6.tls);
  CHECK(http::address_of("http://db:1").host == "db");
  CHECK(http::address_of("[::1]").port == "2379");
}

TEST_CASE("an answer's head says its status and how its body comes, in any case of its names") {
  const auto sized = http::parse_head("HTTP/1.1 200 OK\r\ncontent-length: 42\r\nGrpc-Metadata-X: y");
  REQUIRE(sized);
  CHECK(sized->status == 200);
  CHECK(sized->content_length == std::optional<std::size_t>(42));
  CHECK_FALSE(sized->chunked);
  CHECK_FALSE(sized->close);
  const auto chunked = http::parse_head("HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: Chunked\r\n"
                                        "Connection: close");
  REQUIRE(chunked);
  CHECK(chunked->status == 503);
  CHECK(chunked->chunked);
  CHECK(chunked->close);
  const auto old = http::parse_head("HTTP/1.0 400 Bad Request");
  REQUIRE(old);
  CHECK(old->close);
  CHECK_FALSE(old->content_length);
}

TEST_CASE("a head that is not HTTP/1.x's, or whose length is not a number, is refused") {
  CHECK_FALSE(http::parse_head(""));
  CHECK_FALSE(http::parse_head("SSH-2.0-OpenSSH_9.2"));
  CHECK_FALSE(http::parse_head("HTTP/1.1 2x0 OK"));
  CHECK_FALSE(http::parse_head("HTTP/1.1 20 OK"));
  CHECK_FALSE(http::parse_head("HTTP/1.1 200 OK\r\nContent-Length: -1"));
  CHECK_FALSE(http::parse_head("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999"));
  CHECK_FALSE(http::parse_head("HTTP/1.1 200 OK\r\nno colon here"));
}

TEST_CASE("a chunk's size is hexadecimal, with extensions ignored, and bounded") {
  CHECK(http::parse_chunk_size("1a3") == std::optional<std::size_t>(0x1a3));
  CHECK(http::parse_chunk_size("0;name=value") == std::optional<std::size_t>(0));
  CHECK(http::parse_chunk_size("FF ") == std::optional<std::size_t>(255));
  CHECK_FALSE(http::parse_chunk_size(""));
  CHECK_FALSE(http::parse_chunk_size("zz"));
  CHECK_FALSE(http::parse_chunk_size("-1"));
  CHECK_FALSE(http::parse_chunk_size("1000000000000000"));
}
