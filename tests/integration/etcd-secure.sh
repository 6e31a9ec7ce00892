#!/usr/bin/env bash
# Locks in a secured etcd: TLS with client certificates (a CA and
# certificates made here with openssl, etcd with --client-cert-auth), and
# etcd's user authentication with tokens that expire within a hold
# (--auth-token-ttl). Each etcd is started here on loopback and stopped at
# the end.
. "$(dirname "$0")/lib.sh"

ETCD=${ETCD:-etcd}
ETCDCTL=${ETCDCTL:-etcdctl}
if ! command -v "$ETCD" >/dev/null || ! command -v "$ETCDCTL" >/dev/null || ! command -v openssl >/dev/null; then
  echo "1..0 # SKIP etcd, etcdctl and openssl are not all installed (apt-get install etcd-server etcd-client openssl)"
  exit 0
fi

secure_dir=$(mktemp -d "${TMPDIR:-/tmp}/fasten-etcd-secure-XXXXXX")
read -r tls_port tls_peer auth_port auth_peer mtls_port mtls_peer < <(python3 "$(dirname "$0")/../helpers/free-ports.py" 6)
export ETCDCTL_API=3
# Not inherited from the runner's environment: each test sets what it means.
unset ETCDCTL_CACERT ETCDCTL_CERT ETCDCTL_KEY ETCDCTL_USER ETCDCTL_PASSWORD ETCDCTL_INSECURE_SKIP_TLS_VERIFY
TLS=127.0.0.1:$tls_port
AUTH=127.0.0.1:$auth_port
MTLS=127.0.0.1:$mtls_port

# make_certificates: a CA, a server certificate for 127.0.0.1, a client
# certificate (common name "root") and one without a common name, in
# $secure_dir.
make_certificates() {
  (
    cd "$secure_dir"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=fasten-test-ca
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 \
      -extfile server.ext
    openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=root
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2 \
      -extfile client.ext
    openssl req -newkey rsa:2048 -nodes -keyout nocn.key -out nocn.csr -subj /O=fasten-test
    openssl x509 -req -in nocn.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out nocn.crt -days 2 \
      -extfile client.ext
    # A CA that signed nothing here: verification against it fails.
    openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.crt -days 2 -subj /CN=other
  ) >"$secure_dir/openssl.log" 2>&1 || {
    echo "Bail out! openssl failed:"
    sed 's/^/# /' "$secure_dir/openssl.log"
    exit 1
  }
}

# start_etcd NAME CLIENT_URL PEER_PORT [ETCD_OPTIONS...]: starts etcd NAME;
# its pid is in $secure_dir/NAME.pid. Returns at once: wait_for_etcd waits.
start_etcd() {
  local name=$1 client=$2 peer=$3
  shift 3
  (
    "$ETCD" --name "$name" --data-dir "$secure_dir/$name" \
      --listen-client-urls "$client" --advertise-client-urls "$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "$name=http://127.0.0.1:$peer" \
      --heartbeat-interval=10 --election-timeout=100 "$@" >>"$secure_dir/$name.log" 2>&1 </dev/null &
    echo $! >"$secure_dir/$name.pid"
  )
}

# wait_for_etcd NAME ETCDCTL_OPTIONS...: until etcd NAME answers etcdctl.
wait_for_etcd() {
  local name=$1 deadline=$((SECONDS + 30))
  shift
  until "$ETCDCTL" --dial-timeout=1s --command-timeout=2s "$@" get nothing >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$(cat "$secure_dir/$name.pid")" 2>/dev/null; then
      echo "Bail out! etcd $name did not start:"
      sed 's/^/# /' "$secure_dir/$name.log"
      exit 1
    fi
    sleep 0.05
  done
}

stop_all() {
  local pid
  for pid in "$secure_dir"/*.pid; do
    [ -e "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  for pid in "$secure_dir"/*.pid; do
    [ -e "$pid" ] || continue
    while kill -0 "$(cat "$pid")" 2>/dev/null; do
      sleep 0.02
    done
  done
  rm -rf "$secure_dir"
}
trap stop_all EXIT

make_certificates
# TLS with client certificates required.
start_etcd tls "https://$TLS" "$tls_peer" --cert-file "$secure_dir/server.crt" --key-file "$secure_dir/server.key" \
  --client-cert-auth --trusted-ca-file "$secure_dir/ca.crt"
# Authentication, over plain HTTP, with tokens that expire after a second
# without use.
# (--logger zap: its log says when a token expires, "deleted a simple token".)
start_etcd auth "http://$AUTH" "$auth_peer" --auth-token-ttl 1 --logger zap
# Both: client certificates required, and authentication.
start_etcd mtls "https://$MTLS" "$mtls_peer" --cert-file "$secure_dir/server.crt" \
  --key-file "$secure_dir/server.key" --client-cert-auth --trusted-ca-file "$secure_dir/ca.crt"
tlsctl() {
  "$ETCDCTL" --endpoints="https://$TLS" --cacert "$secure_dir/ca.crt" --cert "$secure_dir/client.crt" --key "$secure_dir/client.key" \
    --dial-timeout=1s --command-timeout=2s "$@"
}
authctl() {
  "$ETCDCTL" --endpoints="$AUTH" --dial-timeout=1s --command-timeout=2s "$@"
}
wait_for_etcd tls --endpoints="https://$TLS" --cacert "$secure_dir/ca.crt" --cert "$secure_dir/client.crt" --key "$secure_dir/client.key"
wait_for_etcd auth --endpoints="$AUTH"
wait_for_etcd mtls --endpoints="https://$MTLS" --cacert "$secure_dir/ca.crt" --cert "$secure_dir/client.crt" --key "$secure_dir/client.key"
{
  authctl user add root:rootpw
  authctl user add alice:alicepw
  authctl user add bob:bobpw
  authctl role add locks
  authctl role grant-permission locks --prefix=true readwrite jobs/
  authctl user grant-role alice locks
  authctl auth enable
} >"$secure_dir/auth-setup.log" 2>&1 || {
  echo "Bail out! cannot set up authentication:"
  sed 's/^/# /' "$secure_dir/auth-setup.log"
  exit 1
}
rootctl() {
  authctl --user root:rootpw "$@"
}
# etcdctl (gRPC) takes the certificate's common name, root, as the user.
mtlsctl() {
  "$ETCDCTL" --endpoints="https://$MTLS" --cacert "$secure_dir/ca.crt" --cert "$secure_dir/client.crt" \
    --key "$secure_dir/client.key" --dial-timeout=1s --command-timeout=2s "$@"
}
{
  mtlsctl user add root:rootpw
  mtlsctl user add alice:alicepw
  mtlsctl role add locks
  mtlsctl role grant-permission locks --prefix=true readwrite jobs/
  mtlsctl user grant-role alice locks
  mtlsctl auth enable
} >"$secure_dir/mtls-setup.log" 2>&1 || {
  echo "Bail out! cannot set up authentication with client certificates:"
  sed 's/^/# /' "$secure_dir/mtls-setup.log"
  exit 1
}

# with_client_certificate COMMAND...: COMMAND with etcdctl's TLS variables set.
with_client_certificate() {
  ETCDCTL_CACERT=$secure_dir/ca.crt ETCDCTL_CERT=$secure_dir/client.crt ETCDCTL_KEY=$secure_dir/client.key "$@"
}

test_a_lock_over_tls_with_a_client_certificate_runs_the_command_and_leaves_no_key() {
  with_client_certificate expect_status 0 "$FASTEN" exclusive "etcd://https://$TLS/tls" \
    sh -c 'echo "$FASTEN_FENCING_TOKEN" >token'
  [ -s token ] || fail "no fencing token"
  expect_eq "" "$(tlsctl get --prefix tls/ --keys-only)" "keys left behind"
  with_client_certificate expect_status 0 "$FASTEN" status "etcd://https://$TLS/tls" >/dev/null
}

test_a_client_certificate_without_its_key_is_77_saying_etcdctl_key() {
  local code=0
  ETCDCTL_CACERT=$secure_dir/ca.crt ETCDCTL_CERT=$secure_dir/client.crt \
    "$FASTEN" exclusive "etcd://https://$TLS/no-key" touch ran 2>err || code=$?
  expect_eq 77 "$code" "status (stderr: $(cat err))"
  [ ! -e ran ] || fail "the command ran"
  expect_contains "$(cat err)" "fasten: a client certificate without its key: $secure_dir/client.crt: ETCDCTL_KEY"
  expect_eq 1 "$(wc -l <err)" "lines on stderr: $(cat err)"
  ETCDCTL_CACERT=$secure_dir/ca.crt ETCDCTL_KEY=$secure_dir/client.key \
    expect_status 77 "$FASTEN" status "etcd://https://$TLS/no-key" 2>err
  expect_contains "$(cat err)" "fasten: a client key without its certificate: $secure_dir/client.key: ETCDCTL_CERT"
}

test_with_authentication_a_certificate_with_a_common_name_is_77_saying_what_to_use() {
  # etcdctl (gRPC) takes this certificate's CN as the user; etcd's JSON
  # gateway refuses every request made with it.
  expect_eq "" "$(mtlsctl get --prefix jobs/ --keys-only)" "etcdctl with the same certificate"
  local code=0
  with_client_certificate "$FASTEN" exclusive "etcd://https://$MTLS/jobs/cn" touch ran 2>err || code=$?
  expect_eq 77 "$code" "status (stderr: $(cat err))"
  [ ! -e ran ] || fail "the command ran"
  expect_contains "$(cat err)" "fasten: etcd's JSON gateway refuses a client certificate with a common name (CN) while authentication is on: $secure_dir/client.crt: "
  expect_contains "$(cat err)" "ETCDCTL_USER"
  expect_eq 1 "$(wc -l <err)" "lines on stderr: $(cat err)"
  ETCDCTL_USER=alice:alicepw with_client_certificate expect_status 77 "$FASTEN" status "etcd://https://$MTLS/jobs/cn" 2>/dev/null
}

test_with_authentication_a_certificate_without_a_common_name_and_a_user_takes_the_lock() {
  ETCDCTL_CACERT=$secure_dir/ca.crt ETCDCTL_CERT=$secure_dir/nocn.crt ETCDCTL_KEY=$secure_dir/nocn.key \
    ETCDCTL_USER=alice ETCDCTL_PASSWORD=alicepw expect_status 0 "$FASTEN" exclusive "etcd://https://$MTLS/jobs/nocn" \
    sh -c 'echo "$FASTEN_FENCING_TOKEN" >token' 2>err
  [ -s token ] || fail "no fencing token: $(cat err)"
  expect_eq "" "$(mtlsctl get --prefix jobs/nocn/ --keys-only)" "keys left behind"
  # The user is still needed: the certificate alone is no one.
  ETCDCTL_CACERT=$secure_dir/ca.crt ETCDCTL_CERT=$secure_dir/nocn.crt ETCDCTL_KEY=$secure_dir/nocn.key \
    expect_status 77 "$FASTEN" exclusive "etcd://https://$MTLS/jobs/nocn" true 2>/dev/null
}

test_https_endpoints_in_fasten_etcd_endpoints_are_used_over_tls() {
  FASTEN_ETCD_ENDPOINTS="https://$TLS" with_client_certificate expect_status 0 "$FASTEN" read etcd:///tls-list true
}

test_two_tls_holders_exclude_each_other() {
  with_client_certificate hold holder exclusive "etcd://https://$TLS/tls-two" --ttl 2
  with_client_certificate expect_status 75 "$FASTEN" exclusive -w 0.3 "etcd://https://$TLS/tls-two" true
  release holder
  expect_eq "" "$(cat holder.err)" "the holder's stderr"
}

test_a_server_certificate_from_another_ca_is_69_saying_tls() {
  ETCDCTL_CACERT=$secure_dir/other-ca.crt ETCDCTL_CERT=$secure_dir/client.crt ETCDCTL_KEY=$secure_dir/client.key \
    expect_status 69 "$FASTEN" exclusive "etcd://https://$TLS/bad-ca" touch ran 2>err
  [ ! -e ran ] || fail "the command ran"
  expect_contains "$(cat err)" "TLS: "
  expect_eq 1 "$(wc -l <err)" "lines on stderr: $(cat err)"
}

test_skipping_verification_still_needs_the_client_certificate_etcd_asks_for() {
  ETCDCTL_INSECURE_SKIP_TLS_VERIFY=true expect_status 69 "$FASTEN" exclusive "etcd://https://$TLS/no-cert" true 2>err
  expect_contains "$(cat err)" "TLS"
  ETCDCTL_INSECURE_SKIP_TLS_VERIFY=true ETCDCTL_CERT=$secure_dir/client.crt ETCDCTL_KEY=$secure_dir/client.key \
    expect_status 0 "$FASTEN" exclusive "etcd://https://$TLS/no-cert" true
}

test_plain_http_to_a_tls_port_is_69_saying_tls() {
  with_client_certificate expect_status 69 "$FASTEN" exclusive "etcd://$TLS/plain" touch ran 2>err
  [ ! -e ran ] || fail "the command ran"
  expect_contains "$(cat err)" "TLS"
}

test_a_user_with_its_password_in_etcdctl_user_takes_the_lock() {
  ETCDCTL_USER=alice:alicepw expect_status 0 "$FASTEN" exclusive "etcd://$AUTH/jobs/a" sh -c 'echo "$FASTEN_FENCING_TOKEN" >token'
  [ -s token ] || fail "no fencing token"
  ETCDCTL_USER=alice ETCDCTL_PASSWORD=alicepw expect_status 0 "$FASTEN" status "etcd://$AUTH/jobs/a" >/dev/null
  expect_eq "" "$(rootctl get --prefix jobs/a/ --keys-only)" "keys left behind"
}

test_a_role_granted_the_lock_s_keys_alone_is_77_naming_the_marks_it_needs_too() {
  {
    rootctl role add solo
    rootctl role grant-permission solo --prefix=true readwrite solo/
    rootctl user add carol:carolpw
    rootctl user grant-role carol solo
  } >/dev/null
  ETCDCTL_USER=carol:carolpw expect_status 77 "$FASTEN" exclusive "etcd://$AUTH/solo" touch ran 2>err
  [ ! -e ran ] || fail "the command ran"
  expect_contains "$(cat err)" "solo~fasten-marks/"
  expect_eq 1 "$(wc -l <err)" "lines on stderr: $(cat err)"
  expect_eq "" "$(rootctl get --prefix solo --keys-only)" "keys left behind"
  rootctl role grant-permission solo --prefix=true readwrite 'solo~fasten-marks/' >/dev/null
  ETCDCTL_USER=carol:carolpw expect_status 0 "$FASTEN" exclusive "etcd://$AUTH/solo" true
  expect_eq "" "$(rootctl get --prefix solo --keys-only)" "keys left behind"
}

test_status_needs_read_on_the_lock_s_keys_and_its_marks() {
  {
    rootctl role add watcher
    rootctl role grant-permission watcher --prefix=true read watched/
    rootctl user add dave:davepw
    rootctl user grant-role dave watcher
    # The mark of a writer that vanished: its key is gone.
    rootctl put 'watched~fasten-marks/694d' '{"ttl": 7}'
  } >/dev/null
  ETCDCTL_USER=dave:davepw expect_status 77 "$FASTEN" status "etcd://$AUTH/watched" 2>err
  expect_contains "$(cat err)" "status needs read on watched/ and watched~fasten-marks/"
  expect_eq 1 "$(wc -l <err)" "lines on stderr: $(cat err)"
  rootctl role grant-permission watcher --prefix=true read 'watched~fasten-marks/' >/dev/null
  expect_eq "etcd://$AUTH/watched: free; 1 holder vanished without letting go (a writer): whoever it excludes waits out its TTL (7 s) before going in" \
    "$(ETCDCTL_USER=dave:davepw "$FASTEN" status "etcd://$AUTH/watched")"
  rootctl del 'watched~fasten-marks/694d' >/dev/null
}

test_a_wrong_password_is_77_naming_the_user_and_never_the_password() {
  ETCDCTL_USER=alice:wrong-secret expect_status 77 "$FASTEN" exclusive -v "etcd://$AUTH/jobs/b" touch ran 2>err
  [ ! -e ran ] || fail "the command ran"
  expect_contains "$(cat err)" "alice"
  case "$(cat err)" in *wrong-secret*) fail "the password was printed: $(cat err)" ;; esac
  ETCDCTL_USER=alice ETCDCTL_PASSWORD=wrong-secret expect_status 77 "$FASTEN" status "etcd://$AUTH/jobs/b" 2>err
  case "$(cat err)" in *wrong-secret*) fail "the password was printed: $(cat err)" ;; esac
}

test_a_role_without_the_lock_s_keys_is_77() {
  ETCDCTL_USER=bob:bobpw expect_status 77 "$FASTEN" exclusive "etcd://$AUTH/jobs/c" touch ran 2>err
  [ ! -e ran ] || fail "the command ran"
  expect_contains "$(cat err)" "bob"
  expect_contains "$(cat err)" "permission denied"
  # Nor does a lock without a user get in.
  expect_status 77 "$FASTEN" exclusive "etcd://$AUTH/jobs/c" true 2>/dev/null
}

test_the_password_is_stored_nowhere_in_etcd() {
  ETCDCTL_USER=alice:alicepw hold holder exclusive "etcd://$AUTH/jobs/d" --ttl 2
  local stored
  stored=$(rootctl get --prefix jobs/d/)
  release holder
  case "$stored" in *alicepw*) fail "the password is in etcd: $stored" ;; esac
  case "$(cat holder.err)" in *alicepw*) fail "the password was printed" ;; esac
}

# expired_tokens USER: how many of USER's tokens etcd has let expire so far.
expired_tokens() {
  grep -c "deleted a simple token.*\"user-name\":\"$1\"" "$secure_dir/auth.log" || true
}

test_a_hold_outlives_several_tokens_and_keeps_its_lease() {
  # Renewals every 2 s (--ttl 6); a token expires after 1 s without use, so
  # each renewal finds its token gone and authenticates again.
  local expired_before
  expired_before=$(expired_tokens alice)
  ETCDCTL_USER=alice:alicepw hold holder exclusive "etcd://$AUTH/jobs/long" --ttl 6 --grace 1
  local key lease start=$SECONDS renewals=0 left last=""
  key=$(rootctl get --prefix jobs/long/ --keys-only | sed '/^$/d')
  lease=${key##*/}
  # Four renewals seen: the lease's time to live went up four times.
  while [ "$renewals" -lt 4 ]; do
    kill -0 "$holder_pid" 2>/dev/null || fail "the holder ended: $(cat holder.err)"
    left=$(rootctl lease timetolive "$lease" | sed -n 's/.*remaining(\(-\{0,1\}[0-9]*\)s).*/\1/p')
    [ -n "$left" ] && [ "$left" -gt 0 ] || fail "lease $lease is gone: $(cat holder.err)"
    if [ -n "$last" ] && [ "$left" -gt "$last" ]; then
      renewals=$((renewals + 1))
    fi
    last=$left
    [ $((SECONDS - start)) -lt 60 ] || fail "only $renewals renewals in 60 s"
    sleep 0.2
  done
  release holder || fail "the holder failed: $(cat holder.err)"
  expect_eq "" "$(cat holder.err)" "the holder's stderr"
  local expired=$(($(expired_tokens alice) - expired_before))
  [ "$expired" -ge 3 ] || fail "only $expired of alice's tokens expired during the hold"
  echo "# a hold of 4 renewals outlived $expired tokens" >>"$secure_dir/measurements"
}

status=0
run_suite || status=$?
cat "$secure_dir/measurements" 2>/dev/null || true
exit "$status"
