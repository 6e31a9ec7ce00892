#!/usr/bin/env bash
# Writers are not starved by a stream of overlapping readers, and readers are
# not starved by writers.
. "$(dirname "$0")/lib.sh"

# reader_stream COUNT: starts a reader every 0.25 s, each holding the lock
# 0.6 s, so that at every moment at least two overlap (the sleeps make the
# load; nothing waits on them). Each reader writes "r" to order when it gets
# the lock, and appends its status to reader-status.
reader_stream() {
  local i
  for i in $(seq "$1"); do
    ( "$FASTEN" read -w 60 lock sh -c 'echo r >>order; sleep 0.6'; echo $? >>reader-status ) &
    sleep 0.25
  done
  wait
}

# entered_after WHO OTHER: how many OTHER lines of order follow the first WHO.
entered_after() {
  awk -v who="$1" -v other="$2" '$0 == who && !seen { seen = 1; next } seen && $0 == other { n++ } END { print n + 0 }' order
}

# Order, not time: a writer that readers starve gets in only after the last
# of them, however fast the machine is.
test_a_waiting_writer_gets_in_while_readers_keep_arriving() {
  reader_stream 16 &
  local stream=$!
  wait_for_state lock shared
  expect_status 0 "$FASTEN" write -w 60 lock sh -c 'echo w >>order'
  wait "$stream"
  expect_eq 16 "$(grep -c '^0$' reader-status)" "readers that got the lock"
  [ "$(entered_after w r)" -ge 1 ] || fail "the writer got in after every reader: $(tr '\n' ' ' <order)"
}

test_readers_that_arrive_while_no_writer_waits_share_the_lock_at_once() {
  hold first read lock
  # -n: each one gets in at its first try, or fails.
  expect_status 0 "$FASTEN" read -n lock true
  hold second read lock
  expect_status 0 "$FASTEN" read -n lock true
  release first
  release second
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
  # Two writers take turns, each holding 0.3 s, and keep coming until the
  # reader has been in and each has had two turns more (at most 400 turns:
  # a starved reader times out first); each writes "w" to order when it
  # gets the lock. They are still coming while the reader waits, however
  # slowly the machine starts them.
  local w
  for w in 1 2; do
    (
      after=0
      for _ in $(seq 400); do
        "$FASTEN" write -w 60 lock sh -c 'echo w >>order; sleep 0.3'
        [ ! -e reader.done ] || after=$((after + 1))
        [ "$after" -lt 2 ] || break
      done
    ) &
  done
  wait_for_waiters lock 1 60
  expect_status 0 "$FASTEN" read -w 60 lock sh -c 'echo r >>order'
  touch reader.done
  wait
  [ "$(entered_after r w)" -ge 2 ] || fail "writers that got in after the reader: $(tr '\n' ' ' <order)"
  [ "$(sed -n '/^r$/q;p' order | wc -l)" -ge 1 ] || fail "no writer was in before the reader: $(tr '\n' ' ' <order)"
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
