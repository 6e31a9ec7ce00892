#!/usr/bin/env bash
# etcd locks against a hostile etcd (tests/helpers/hostile-etcd.py): a JSON
# gateway that answers badly on purpose, one way per test. fasten-etcd must
# fail closed: the status and the one line it ends with, a command that never
# runs unless its key is there on its own live lease (the command asks the
# server, which says "live" or "absent"), and an end within a bound: the
# request timeout (5 s) for an answer that never comes right, the lease's
# TTL for a lease that stops being renewed, -w for a queue that lies. The
# bounds are generous (a busy machine), yet far below what a hang, or a
# lease kept by the TTL asked rather than the one granted, would take.
. "$(dirname "$0")/lib.sh"

: "${HOSTILE_ETCD:?HOSTILE_ETCD must name tests/helpers/hostile-etcd.py}"

# What a command runs first: asks the server whether its key
# ($ETCD_LOCK_KEY) is there under a live lease, and prints its answer, "live"
# or "absent". In bash rather than Python, whose start can take seconds on a
# busy machine, longer than a short lease.
check_key='exec 3<>"/dev/tcp/127.0.0.1/$port" &&
  printf "GET /check/%s HTTP/1.0\r\n\r\n" "$(printf %s "$ETCD_LOCK_KEY" | base64 -w0)" >&3 &&
  sed -n "\$p" <&3'

# start_hostile CASE: starts the server, misbehaving as CASE, in the test's
# directory, and waits until it listens; its port is in $port.
start_hostile() {
  python3 "$HOSTILE_ETCD" "$PWD" "$1" >server.log 2>&1 &
  wait_for_file port 60
  port=$(cat port)
  export port
}

# attempt FASTEN_ARGS...: runs fasten-etcd's lock on etcd://127.0.0.1:$port/lock
# with a command that asks the server whether its key is live (into `ran`)
# and then runs for at most 30 s, or until fasten stops it. Sets $status,
# $elapsed_ms, and err (its stderr).
attempt() {
  local start
  start=$(now_ms)
  status=0
  "$FASTEN" exclusive "$@" "etcd://127.0.0.1:$port/lock" bash -c "$check_key >ran; exec sleep 30" \
    2>err || status=$?
  elapsed_ms=$(($(now_ms) - start))
}

# expect_failed_closed STATUS MAX_MS TEXT: fasten exited with STATUS within
# MAX_MS, with one line on stderr, "fasten: ...TEXT...", and never ran the
# command.
expect_failed_closed() {
  expect_eq "$1" "$status" "status (stderr: $(cat err))"
  [ "$elapsed_ms" -le "$2" ] || fail "fasten took $elapsed_ms ms, more than $2 ms"
  [ ! -e ran ] || fail "the command ran: $(cat ran)"
  if [ -n "$3" ]; then
    expect_eq 1 "$(wc -l <err)" "lines on stderr ($(cat err))"
    expect_contains "$(cat err)" "fasten: "
    expect_contains "$(cat err)" "$3"
  fi
}

# expect_ran_live_then_lost MAX_MS TEXT: the command ran with its key live
# under fasten's lease, then fasten stopped it and exited 76 within MAX_MS,
# with TEXT in its one line.
expect_ran_live_then_lost() {
  expect_eq 76 "$status" "status (stderr: $(cat err))"
  expect_eq live "$(cat ran)" "the key, when the command ran"
  [ "$elapsed_ms" -le "$1" ] || fail "fasten took $elapsed_ms ms, more than $1 ms"
  expect_eq 1 "$(grep -c '^fasten: ' err)" "fasten's lines on stderr ($(cat err))"
  expect_contains "$(cat err)" "$2"
}

test_an_honest_server_gives_the_lock_with_the_key_live() {
  start_hostile honest
  "$FASTEN" exclusive -w 5 "etcd://127.0.0.1:$port/lock" bash -c "$check_key" >ran
  expect_eq live "$(cat ran)"
  # The command asked too late (its lease revoked): the check can say no.
  bash -c "ETCD_LOCK_KEY=lock/1; $check_key" >after
  expect_eq absent "$(cat after)"
}

test_a_truncated_body_is_unavailable() {
  start_hostile truncated
  attempt -w 3
  expect_failed_closed 69 15000 "cannot reach etcd"
}

test_a_body_that_is_not_json_is_unavailable() {
  start_hostile invalid-json
  attempt -w 3
  expect_failed_closed 69 15000 "etcd gave an answer that is not JSON"
}

test_a_revision_that_is_not_a_number_creates_no_key() {
  start_hostile revision-string
  attempt -w 3
  expect_failed_closed 69 15000 "etcd did not create the lock's key"
}

test_a_negative_ttl_is_no_lease() {
  start_hostile negative-ttl
  attempt -w 3
  expect_failed_closed 69 15000 "etcd granted no lease"
}

test_a_lease_id_of_0_is_no_lease() {
  start_hostile lease-zero
  attempt -w 3
  expect_failed_closed 69 15000 "etcd granted no lease"
}

test_a_50_mb_body_is_refused() {
  start_hostile huge-body
  attempt -w 3
  expect_failed_closed 69 15000 "etcd gave an answer larger than 8 MiB"
}

test_a_body_dripped_a_byte_a_second_ends_by_the_request_timeout() {
  start_hostile drip
  attempt -w 3
  expect_failed_closed 69 15000 "no answer before the deadline"
}

test_a_connection_reset_mid_response_is_unavailable() {
  start_hostile reset
  attempt -w 3
  expect_failed_closed 69 15000 "cannot reach etcd"
}

test_http_200_with_an_error_inside_is_no_lease() {
  start_hostile error-in-200
  attempt -w 3
  expect_failed_closed 69 15000 "etcdserver: too many requests"
}

test_a_watch_with_other_keys_and_revisions_going_back_keeps_waiting() {
  start_hostile watch-lies
  attempt -w 2
  expect_failed_closed 75 10000 ""
  # It left the queue: its lease revoked.
  grep -q '^/v3/lease/revoke ' requests || fail "no revoke: $(cut -c1-80 requests | sort | uniq -c)"
}

test_a_ttl_shorter_than_asked_is_the_one_kept() {
  start_hostile short-ttl
  # Asked 30 s, granted 2: renewals stop once the command runs, and the
  # command is stopped once the 2 s are nearly up, long before the 30.
  attempt -w 3 --ttl 30 --grace 0.5
  expect_ran_live_then_lost 15000 "its lease was not renewed within its TTL of 2 s"
}

test_a_keepalive_answered_with_ttl_0_loses_the_lock() {
  start_hostile keepalive-ttl-zero
  attempt -w 3 --ttl 3 --grace 0.5
  expect_ran_live_then_lost 15000 "etcd says its lease has expired or was revoked"
}

test_a_renewal_answered_while_the_key_is_on_another_lease_loses_the_lock() {
  start_hostile key-taken-over
  # Keep-alives still answer a healthy TTL (a stale lessor): the read of the
  # key that a renewal waits for shows it taken, and the command is stopped
  # long before its 30 s.
  attempt -w 3 --ttl 3 --grace 0.5
  expect_ran_live_then_lost 15000 "is on another lease"
}

test_a_renewal_answered_without_a_read_of_the_key_loses_the_lock() {
  start_hostile keepalive-without-quorum
  # Keep-alives answer, reads of the key do not (a member without a quorum):
  # no renewal counts, and the command is stopped once the TTL is nearly up.
  attempt -w 3 --ttl 3 --grace 0.5
  expect_ran_live_then_lost 15000 "its lease was not renewed within its TTL of 3 s"
  expect_contains "$(cat err)" "no read of its key confirmed"
}

test_a_renewal_answered_in_an_older_raft_term_than_the_read_after_it_does_not_count() {
  start_hostile keepalive-old-term
  # Keep-alives answer from term 1 and renew nothing; the key stays until
  # the lease runs out on the server, but no renewal counts, so the command
  # is stopped by the deadline of the last one that did, before then.
  attempt -w 3 --ttl 3 --grace 0.5
  expect_ran_live_then_lost 15000 "its lease was not renewed within its TTL of 3 s"
  expect_contains "$(cat err)" "etcd answered the renewal in raft term 1"
}

test_a_request_comes_back_to_a_member_that_was_unavailable_after_trying_one_that_holds_it() {
  start_hostile unavailable-once
  # The first endpoint holds every request; the second answers the grant 503
  # once, then as etcd. The grant goes round the two again, rather than
  # spend half its time on the first and fail on the 503.
  status=0
  "$FASTEN" exclusive -w 20 "etcd://127.0.0.1:$(cat silent-port),127.0.0.1:$port/lock" \
    bash -c "$check_key" >ran 2>err || status=$?
  expect_eq 0 "$status" "status (stderr: $(cat err))"
  expect_eq live "$(cat ran)"
  expect_eq 2 "$(grep -c '^/v3/lease/grant ' requests)" "grants the server saw"
}

test_a_transaction_that_says_succeeded_without_the_key_never_runs_the_command() {
  start_hostile txn-lies
  attempt -w 2
  expect_failed_closed 75 10000 ""
}

test_a_waiter_whose_looks_etcd_refuses_leaves_the_queue_when_signalled() {
  start_hostile looks-refused
  # Every look after the key's creation is refused at once: the waiter tries
  # again and again, pausing in between, and the signal finds it there or in
  # a request. It revokes its lease and dies by the signal.
  env --default-signal "$FASTEN" exclusive -w 600 "etcd://127.0.0.1:$port/lock" touch ran 2>err &
  local waiter=$!
  wait_for_line requests '"target": "LEASE"'
  kill -TERM "$waiter"
  # Long before -w would end the wait: the signal ends it, not the deadline.
  wait_for_exit "$waiter" 30
  local code=0
  wait "$waiter" || code=$?
  expect_eq 143 "$code" "the waiter's status (stderr: $(cat err))"
  wait_for_line requests /v3/lease/revoke
  [ ! -e ran ] || fail "the command ran"
}

test_a_waiter_ended_by_a_signal_deletes_its_key_where_etcd_refuses_the_revoke() {
  start_hostile revoke-refused
  # "lock/1" is held for good: the waiter queues and watches it. A signal
  # deletes its key with its mark, then revokes, which is refused: the key
  # must be gone all the same, not left without its mark until its lease
  # runs out.
  env --default-signal "$FASTEN" exclusive -w 600 --ttl 60 "etcd://127.0.0.1:$port/lock" touch ran 2>err &
  local waiter=$!
  wait_for_line requests /v3/watch
  kill -TERM "$waiter"
  wait_for_exit "$waiter" 30
  expect_status 143 wait "$waiter"
  wait_for_line requests /v3/lease/revoke
  local key
  key=$(python3 -c '
import base64, json, sys
for line in open(sys.argv[1]):
    path, _, body = line.partition(" ")
    for op in json.loads(body).get("success", []) if path == "/v3/kv/txn" else []:
        key = base64.b64decode(op.get("request_put", {}).get("key", "")).decode()
        if key.startswith("lock/"):
            print(base64.b64encode(key.encode()).decode())
            sys.exit()
' requests)
  [ -n "$key" ] || fail "no key was made: $(cat requests)"
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf "GET /check/%s HTTP/1.0\r\n\r\n" "$key" >&3
  expect_eq absent "$(sed -n '$p' <&3)" "the waiter's key after the signal"
  exec 3<&-
  [ ! -e ran ] || fail "the command ran"
}

# lease_of KEY: the lease the server keeps KEY on (0: none; empty: no KEY).
lease_of() {
  local body
  body="{\"key\": \"$(printf %s "$1" | base64 -w0)\"}"
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf "POST /v3/kv/range HTTP/1.0\r\nContent-Length: %s\r\n\r\n%s" "${#body}" "$body" >&3
  sed -n '$p' <&3 | sed -n 's/.*"lease": "\([0-9]*\)".*/\1/p'
  exec 3<&-
}

test_a_wait_that_ends_while_etcd_answers_slowly_still_arms_a_vanished_holders_mark() {
  start_hostile vanished-slow
  # The waiter finds the vanished holder's mark at once, and -w passes while
  # etcd reads the marks' TTLs and grants the lease that arms it: the mark
  # must be armed all the same, or a lock whose takers all wait no longer
  # than that never frees.
  attempt -w 1
  expect_failed_closed 75 15000 ""
  local lease
  lease=$(lease_of "lock~fasten-marks/1")
  [ -n "$lease" ] || fail "the mark is gone"
  [ "$lease" != 0 ] || fail "the mark is left on no lease: no one who waits less than its TTL ever deletes it"
}

test_a_slot_claimed_by_a_holder_that_vanished_meanwhile_is_taken_only_once_it_is_waited_out() {
  start_hostile slot-claimed-and-vanished
  # Between the waiter's read of the claims and its claim, another holder
  # claims the same slot and vanishes (its lease revoked under it, its mark
  # left): it may still run its command in that slot, for up to its TTL
  # (30 s). The claim goes through, but the waiter must not go in before
  # that holder is waited out, which -w 2 does not allow.
  attempt --slots 2 -w 2
  expect_failed_closed 75 15000 ""
}

test_a_reader_makes_no_request_for_a_vanished_readers_mark_that_is_armed_already() {
  start_hostile armed-vanished-reader
  # A reader does not wait another reader out, and this mark goes by itself
  # already: a reader whose turn has come has nothing to arm, and reads no
  # marks' values for it (every reader that comes while the mark is there
  # would pay that request).
  status=0
  "$FASTEN" read -n "etcd://127.0.0.1:$port/lock" true 2>err || status=$?
  expect_eq 0 "$status" "status (stderr: $(cat err))"
  expect_eq 0 "$(python3 -c '
import base64, json, sys
marks = base64.b64encode(b"lock~fasten-marks/").decode()
reads = 0
for line in open(sys.argv[1]):
    path, _, body = line.partition(" ")
    request = json.loads(body) if path == "/v3/kv/txn" else {}
    reads += "compare" not in request and any(
        op.get("request_range", {}).get("key") == marks and not op["request_range"].get("keys_only")
        for op in request.get("success", []))
print(reads)
' requests)" "reads of the marks' values"
}

test_a_key_on_another_lease_never_runs_the_command() {
  start_hostile foreign-lease
  attempt -w 2
  expect_failed_closed 75 10000 ""
}

test_with_two_etcd_locks_the_command_is_stopped_when_either_lease_is_lost() {
  # LOCK on an honest server, --also on one whose keep-alives stop once the
  # command has asked it /check: the command must be stopped by the --also
  # lock's lease (granted 2 s), not kept until the first lock's.
  mkdir honest short
  cd short
  start_hostile short-ttl
  local short_port=$port
  cd ../honest
  start_hostile honest
  cd ..
  local start
  start=$(now_ms)
  status=0
  port=$short_port "$FASTEN" exclusive -w 3 --ttl 30 --grace 0.5 --also exclusive "etcd://127.0.0.1:$short_port/other" \
    "etcd://127.0.0.1:$port/lock" bash -c "$check_key >/dev/null; touch ran; exec sleep 30" 2>err || status=$?
  elapsed_ms=$(($(now_ms) - start))
  expect_eq 76 "$status" "status (stderr: $(cat err))"
  [ -e ran ] || fail "the command did not run"
  [ "$elapsed_ms" -le 15000 ] || fail "fasten took $elapsed_ms ms, more than 15000 ms"
  expect_eq 1 "$(grep -c '^fasten: ' err)" "fasten's lines on stderr ($(cat err))"
  expect_contains "$(cat err)" "its lease was not renewed within its TTL of 2 s"
}

run_suite
