#!/usr/bin/env python3
"""An etcd JSON gateway on loopback that answers badly on purpose.

    hostile-etcd.py DIR CASE     serve, misbehaving as CASE says

A GET of /check/KEY (KEY in base64) answers "live" when KEY is there on the
lease it names (NAME/<lease in hexadecimal>) and that lease is alive,
"absent" otherwise: the command that fasten runs asks it.

It keeps a small etcd of its own (leases with their TTLs, keys with their
create and mod revisions, ranges, transactions of puts and ranges with
compares of create revisions and leases, watches), enough
for fasten-etcd to take a lock from it, and breaks one thing, CASE:

  honest              nothing
  truncated           a grant's body ends before its Content-Length
  invalid-json        a grant's body is not JSON
  revision-string     a create transaction's revision is "six"
  negative-ttl        a grant's TTL is -5
  lease-zero          a grant's lease ID is 0
  huge-body           a grant's body is 50 MB (valid JSON)
  drip                a grant's body comes a byte a second
  reset               the connection is reset halfway through a grant's body
  error-in-200        a grant is answered 200 with an error inside
  watch-lies          "lock/1" is held by a lease that never ends; watches
                      send DELETE events of other keys, with revisions that
                      go backwards, over and over
  short-ttl           grants answer a TTL of 2 s whatever is asked; once the
                      command has asked /check, keep-alives get no answer
  keepalive-ttl-zero  once the command has asked /check, keep-alives
                      answer a TTL of 0
  txn-lies            the create transaction (one that puts) answers
                      succeeded: true with a revision, and stores nothing
  foreign-lease       the create transaction puts the key on another lease,
                      one that never ends
  key-taken-over      once the command has asked /check, its key is on
                      another lease, created again at a later revision (as if
                      the lease had expired at a new leader and another client
                      had taken the key), while keep-alives of its own lease
                      still answer a healthy TTL, as a stale lessor does
  keepalive-without-quorum
                      once the command has asked /check, keep-alives answer a
                      healthy TTL but the range of a key is refused at once
                      (503, "etcdserver: request timed out"), as a member
                      cut off from the quorum serves them
  keepalive-old-term  once the command has asked /check, keep-alives answer a
                      healthy TTL from raft term 1 and renew nothing (a
                      leader deposed while it was stopped), while ranges
                      answer from term 2
  looks-refused       the create transaction's answer holds no read of the
                      queue, and every transaction that puts nothing (a
                      waiter's look) is refused at once (503)
  revoke-refused      "lock/1" is held by a lease that never ends, and every
                      revoke is answered 503 ("etcdserver: request timed
                      out"), as a member cut off from the quorum does
  unavailable-once    the first grant is answered 503 ("etcdserver: no
                      leader"), the rest as etcd would; and a second port,
                      written to DIR/silent-port, accepts connections and
                      never answers (a member that has lost its leader and
                      holds requests)
  vanished-slow       a holder of "lock" vanished: its mark
                      "lock~fasten-marks/1" (TTL 30 s) is there on no lease,
                      its key "lock/1" is gone; a read of the marks with
                      their values (a waiter's, once it found the mark) and
                      every grant after the first (the one that arms the
                      mark) are answered after 2 s, as a loaded etcd does
  slot-claimed-and-vanished
                      just before the first claim of a slot is made, another
                      holder (--slots 2, TTL 30 s) claims that slot and
                      vanishes: its lease is revoked, which deletes its key
                      and its claim and leaves its mark; the claim then goes
                      through, as etcd would let it
  armed-vanished-reader
                      a reader of "lock" vanished: its key "lock/read/1" is
                      gone, and its mark "lock~fasten-marks/read/1" (TTL
                      30 s) is armed already, on lease 1, which never runs
                      out here

It writes the port to DIR/port once it accepts connections (the readiness
signal), and a line per request to DIR/requests. SIGTERM ends it.
"""

import base64
import json
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Condition()
revision = 1
next_lease = 0x694D0000
leases = {}  # id -> [ttl, expires_at (monotonic), or None for never]
kvs = {}  # key bytes -> dict(value, create, mod, lease)
deletions = []  # (revision, key)
command_started = threading.Event()
case = "honest"
directory = "."


def b64(data):
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text or "")


def header():
    return {"cluster_id": "1", "member_id": "2", "revision": str(revision), "raft_term": "2"}


def alive(lease_id):
    lease = leases.get(lease_id)
    return lease is not None and (lease[1] is None or lease[1] > time.monotonic())


def expire():
    """Ends the leases whose TTL ran out, and deletes their keys."""
    for lease_id in [l for l in leases if not alive(l)]:
        end_lease(lease_id)


def end_lease(lease_id):
    global revision
    leases.pop(lease_id, None)
    for key in [k for k, kv in kvs.items() if kv["lease"] == lease_id]:
        revision += 1
        del kvs[key]
        deletions.append((revision, key))
    lock.notify_all()


def in_range(key, start, end):
    if not end:
        return key == start
    return key >= start and (end == b"\0" or key < end)


def kv_json(key, kv, keys_only=False):
    out = {"key": b64(key), "create_revision": str(kv["create"]), "mod_revision": str(kv["mod"]),
           "version": "1", "lease": str(kv["lease"])}
    if not keys_only and kv["value"]:
        out["value"] = b64(kv["value"])
    return out


def do_range(request):
    start, end = unb64(request.get("key")), unb64(request.get("range_end"))
    found = [(k, kv) for k, kv in kvs.items() if in_range(k, start, end)]
    most = int(request.get("max_create_revision", 0))
    if most:
        found = [(k, kv) for k, kv in found if kv["create"] <= most]
    found.sort(key=lambda item: item[1]["create"], reverse=request.get("sort_order") == "DESCEND")
    limit = int(request.get("limit", 0))
    if limit:
        found = found[:limit]
    answer = {"header": header(), "count": str(len(found))}
    if found:
        answer["kvs"] = [kv_json(k, kv, request.get("keys_only", False)) for k, kv in found]
    return answer


def compare_holds(c):
    kv = kvs.get(unb64(c["key"]))
    if c.get("target") == "LEASE":
        return (kv["lease"] if kv else 0) == int(c.get("lease", 0))
    return (kv["create"] if kv else 0) == int(c.get("create_revision", 0))


def do_txn(request):
    """The compares, then the puts, deletes and ranges of one branch in
    order (a range sees the writes before it), at one revision."""
    global revision
    holds = all(compare_holds(c) for c in request.get("compare", []))
    ops = request.get("success" if holds else "failure", [])
    if any("request_put" in op or "request_delete_range" in op for op in ops):
        revision += 1
    responses = []
    for op in ops:
        if "request_put" in op:
            put = op["request_put"]
            key = unb64(put["key"])
            old = kvs.get(key)
            kvs[key] = {"value": unb64(put.get("value")), "create": old["create"] if old else revision,
                        "mod": revision, "lease": int(put.get("lease", 0))}
            responses.append({"response_put": {"header": header()}})
        elif "request_delete_range" in op:
            key = unb64(op["request_delete_range"]["key"])
            if kvs.pop(key, None) is not None:
                deletions.append((revision, key))
            responses.append({"response_delete_range": {"header": header()}})
        else:
            responses.append({"response_range": do_range(op["request_range"])})
    lock.notify_all()
    answer = {"header": header(), "responses": responses}
    if holds:
        answer["succeeded"] = True
    return answer


def stage_vanished_claim(claim):
    """Another slot holder claims `claim`, with its key and its mark, and
    its lease is revoked under it (slot-claimed-and-vanished)."""
    global revision, next_lease
    next_lease += 1
    other = next_lease
    leases[other] = [30, time.monotonic() + 30]
    revision += 1
    key = b"lock/slot/%x" % other
    value = json.dumps({"host": "elsewhere", "pid": 1, "command": "sleep", "slots": 2,
                        "slot": int(claim.rsplit(b"/", 1)[1])}).encode()
    kvs[key] = {"value": value, "create": revision, "mod": revision, "lease": other}
    kvs[b"lock~fasten-marks/slot/%x" % other] = {"value": b'{"ttl":30}', "create": revision, "mod": revision,
                                                 "lease": 0}
    revision += 1
    kvs[claim] = {"value": key, "create": revision, "mod": revision, "lease": other}
    end_lease(other)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, answer, status=200):
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_raw(self, body, length=None):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length if length is not None else len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        # /check/KEY (base64): whether KEY is there under a live lease.
        key = unb64(self.path[len("/check/"):])
        # The lease named in the key, NAME/<lease in hexadecimal>: the key is
        # live when it is on that lease, and that lease is alive.
        try:
            own = int(key.rsplit(b"/", 1)[1], 16)
        except ValueError:
            own = None
        global revision
        with lock:
            expire()
            live = key in kvs and kvs[key]["lease"] == own and alive(own)
            if case == "key-taken-over" and live:
                leases[1] = [60, None]
                revision += 1
                kvs[key] = dict(kvs[key], create=revision, mod=revision, lease=1)
        command_started.set()
        body = b"live\n" if live else b"absent\n"
        self.send_raw(body)

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with open(os.path.join(directory, "requests"), "a") as log:
            log.write(f"{self.path} {json.dumps(request)}\n")
        handler = {
            "/v3/lease/grant": self.grant,
            "/v3/lease/keepalive": self.keepalive,
            "/v3/lease/revoke": self.revoke,
            "/v3/kv/range": self.range,
            "/v3/kv/txn": self.txn,
            "/v3/watch": self.watch,
        }.get(self.path)
        if handler is None:
            self.send_json({"error": "not found", "code": 12, "message": "not found"}, 404)
            return
        try:
            handler(request)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def grant(self, request):
        global next_lease
        ttl = int(request.get("TTL", 0))
        if case == "short-ttl":
            ttl = 2
        if case == "vanished-slow":
            if getattr(Handler, "granted_once", False):
                time.sleep(2)
            Handler.granted_once = True
        with lock:
            next_lease += 1
            lease_id = next_lease
            leases[lease_id] = [ttl, time.monotonic() + ttl]
        good = {"header": header(), "ID": str(lease_id), "TTL": str(ttl)}
        if case == "truncated":
            body = json.dumps(good).encode()
            self.send_raw(body[: len(body) // 2], length=len(body))
            self.close_connection = True
        elif case == "invalid-json":
            self.send_raw(b'{"header": {}, "ID": "' + str(lease_id).encode() + b'", "TTL": ')
        elif case == "negative-ttl":
            self.send_json(dict(good, TTL="-5"))
        elif case == "lease-zero":
            self.send_json(dict(good, ID="0"))
        elif case == "huge-body":
            padding = b"x" * (50 << 20)
            body = json.dumps(good).encode()[:-1] + b', "padding": "' + padding + b'"}'
            self.send_raw(body)
        elif case == "drip":
            body = json.dumps(good).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(1)
        elif case == "reset":
            body = json.dumps(good).encode()
            self.send_raw(body[: len(body) // 2], length=len(body))
            # SO_LINGER with a zero timeout: close sends RST, not FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif case == "unavailable-once" and not getattr(Handler, "refused_once", False):
            Handler.refused_once = True
            self.send_json({"error": "etcdserver: no leader", "code": 14, "message": "etcdserver: no leader"}, 503)
        elif case == "error-in-200":
            self.send_json({"error": "etcdserver: too many requests", "code": 8,
                            "message": "etcdserver: too many requests"})
        else:
            self.send_json(good)

    def keepalive(self, request):
        lease_id = int(request.get("ID", 0))
        if case == "short-ttl" and command_started.is_set():
            time.sleep(30)  # no answer: fasten's own deadline ends the request
            return
        stale = case == "keepalive-old-term" and command_started.is_set()
        with lock:
            expire()
            lease = leases.get(lease_id)
            if lease is not None and not stale:
                lease[1] = time.monotonic() + lease[0]
        if stale and lease is not None:
            self.send_json({"result": {"header": dict(header(), raft_term="1"), "ID": str(lease_id),
                                       "TTL": str(lease[0])}})
        elif lease is None:
            self.send_json({"result": {"header": header(), "ID": str(lease_id)}})
        elif case == "keepalive-ttl-zero" and command_started.is_set():
            self.send_json({"result": {"header": header(), "ID": str(lease_id), "TTL": "0"}})
        else:
            self.send_json({"result": {"header": header(), "ID": str(lease_id), "TTL": str(lease[0])}})

    def revoke(self, request):
        if case == "revoke-refused":
            self.send_json({"error": "etcdserver: request timed out", "code": 14,
                            "message": "etcdserver: request timed out"}, 503)
            return
        with lock:
            lease_id = int(request.get("ID", 0))
            if lease_id not in leases:
                answer, status = {"error": "etcdserver: requested lease not found", "code": 5,
                                  "message": "etcdserver: requested lease not found"}, 404
            else:
                end_lease(lease_id)
                answer, status = {"header": header()}, 200
        self.send_json(answer, status)

    def range(self, request):
        if case == "keepalive-without-quorum" and command_started.is_set() and not request.get("range_end"):
            self.send_json({"error": "etcdserver: request timed out", "code": 14,
                            "message": "etcdserver: request timed out"}, 503)
            return
        with lock:
            expire()
            answer = do_range(request)
        self.send_json(answer)

    def txn(self, request):
        global revision
        if case == "vanished-slow" and "compare" not in request and any(
                unb64(op.get("request_range", {}).get("key")) == b"lock~fasten-marks/"
                and not op["request_range"].get("keys_only") for op in request.get("success", [])):
            time.sleep(2)
        with lock:
            expire()
            makes_keys = any("request_put" in op for op in request.get("success", []))
            if case == "looks-refused" and not makes_keys:
                self.send_json({"error": "etcdserver: request timed out", "code": 14,
                                "message": "etcdserver: request timed out"}, 503)
                return
            if case == "slot-claimed-and-vanished" and not getattr(Handler, "staged", False):
                claims = [unb64(op["request_put"]["key"]) for op in request.get("success", [])
                          if "request_put" in op]
                claims = [key for key in claims if key.startswith(b"lock/slot-claim/")]
                if claims:
                    Handler.staged = True
                    stage_vanished_claim(claims[0])
            if case == "txn-lies" and makes_keys:
                revision += 1
                answer = {"header": header(), "succeeded": True, "responses": [{"response_put": {}}]}
            else:
                if case == "foreign-lease":
                    leases[1] = [60, None]
                    for op in request.get("success", []):
                        if "request_put" in op:
                            op["request_put"]["lease"] = "1"
                answer = do_txn(request)
            if case == "looks-refused":
                answer["responses"] = answer["responses"][:1]
            if case == "revision-string" and answer.get("succeeded"):
                answer["header"]["revision"] = "six"
        self.send_json(answer)

    def chunk(self, message):
        data = (json.dumps(message) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, request):
        create = request.get("create_request", {})
        start, end = unb64(create.get("key")), unb64(create.get("range_end"))
        from_revision = int(create.get("start_revision", 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with lock:
            self.chunk({"result": {"header": header(), "created": True}})
        if case == "watch-lies":
            # Events for other keys, at revisions that go backwards.
            for back in range(1000):
                self.chunk({"result": {"header": dict(header(), revision=str(max(1, revision - back))),
                                       "events": [{"type": "DELETE", "kv": {
                                           "key": b64(b"other/%d" % back), "mod_revision": str(revision - back)}}]}})
                time.sleep(0.01)
            self.wfile.write(b"0\r\n\r\n")
            return
        deadline = time.monotonic() + 10
        with lock:
            while time.monotonic() < deadline:
                expire()
                hits = [(r, k) for r, k in deletions if r >= from_revision and in_range(k, start, end)]
                if hits:
                    r, k = hits[0]
                    self.chunk({"result": {"header": header(), "events": [
                        {"type": "DELETE", "kv": {"key": b64(k), "mod_revision": str(r)}}]}})
                    break
                lock.wait(0.1)
        self.wfile.write(b"0\r\n\r\n")


def main():
    global case, directory
    directory, case = sys.argv[1], sys.argv[2]
    if case in ("watch-lies", "revoke-refused"):
        leases[1] = [60, None]
        kvs[b"lock/1"] = {"value": b"", "create": 1, "mod": 1, "lease": 1}
    if case == "armed-vanished-reader":
        leases[1] = [30, None]
        kvs[b"lock~fasten-marks/read/1"] = {"value": b'{"ttl":30}', "create": 1, "mod": 1, "lease": 1}
    if case == "vanished-slow":
        kvs[b"lock~fasten-marks/1"] = {"value": b'{"ttl":30}', "create": 1, "mod": 1, "lease": 0}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if case == "unavailable-once":
        # The kernel completes connections from the backlog; nobody reads.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        with open(os.path.join(directory, "silent-port"), "w") as f:
            f.write(str(silent.getsockname()[1]))
    with open(os.path.join(directory, "port.tmp"), "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(os.path.join(directory, "port.tmp"), os.path.join(directory, "port"))
    server.serve_forever()


if __name__ == "__main__":
    main()
