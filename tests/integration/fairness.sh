#!/usr/bin/env bash
# Writers are not starved by a stream of overlapping readers, and readers are
# not starved by writers.
. "$(dirname "$0")/lib.sh"

# reader_stream COUNT: starts a reader every 0.25 s, each holding the lock
# 0.6 s, so that at every moment at least two overlap. Each reader appends
# its status to reader-status.
reader_stream() {
  local i
  for i in $(seq "$1"); do
    ( "$FASTEN" read -w 20 lock sleep 0.6; echo $? >>reader-status ) &
    sleep 0.25
  done
  wait
}

test_a_waiting_writer_gets_in_while_readers_keep_arriving() {
  reader_stream 16 &
  local stream=$!
  wait_for_state lock shared
  local start end
  start=$(now_ms)
  expect_status 0 "$FASTEN" write -w 20 lock true
  end=$(now_ms)
  echo "# the writer waited $((end - start)) ms" >&2
  [ $((end - start)) -lt 1500 ] || fail "the writer waited $((end - start)) ms under the reader stream"
  wait "$stream"
  expect_eq 16 "$(grep -c '^0$' reader-status)" "readers that got the lock"
}

test_readers_that_arrive_while_no_writer_waits_share_the_lock_at_once() {
  hold first read lock
  local start end
  start=$(now_ms)
  expect_status 0 "$FASTEN" read -n lock true
  hold second read lock
  expect_status 0 "$FASTEN" read -n lock true
  end=$(now_ms)
  release first
  release second
  [ $((end - start)) -lt 1000 ] || fail "readers took $((end - start)) ms to share the lock"
}

test_a_waiting_writer_holds_back_new_readers() {
  hold reader read lock
  "$FASTEN" write -w 20 lock touch wrote &
  local writer=$!
  wait_for_waiters lock 1
  # The writer waits for the reader inside; a new reader must queue behind it.
  expect_status 75 "$FASTEN" read -n lock true
  expect_status 75 "$FASTEN" read -w 0.2 lock true
  release reader
  wait "$writer"
  [ -e wrote ] || fail "the writer did not run"
  expect_status 0 "$FASTEN" read -n lock true
}

test_a_waiting_reader_gets_in_while_writers_keep_arriving() {
  # Two writers take turns, each holding 0.3 s, for about 4 s.
  local w
  for w in 1 2; do
    (
      for _ in $(seq 7); do
        "$FASTEN" write -w 20 lock sleep 0.3
      done
    ) &
  done
  wait_for_waiters lock 1
  local start end
  start=$(now_ms)
  expect_status 0 "$FASTEN" read -w 20 lock true
  end=$(now_ms)
  echo "# the reader waited $((end - start)) ms" >&2
  [ $((end - start)) -lt 2000 ] || fail "the reader waited $((end - start)) ms under the writers"
  wait
}

test_a_writer_killed_while_waiting_leaves_the_turnstile_free() {
  hold reader read lock
  "$FASTEN" write lock true &
  local writer=$!
  wait_for_waiters lock 1
  expect_status 75 "$FASTEN" read -n lock true
  kill -KILL "$writer"
  wait "$writer" 2>/dev/null || true
  expect_status 0 "$FASTEN" read -n lock true
  release reader
}

run_suite
