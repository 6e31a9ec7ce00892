#!/usr/bin/env bash
# scripts/common.sh and scripts/run, on a copy of them in a small project of
# their own (a `fasten` that prints its arguments and a test program), so
# that each case sets up a build in seconds: scripts/run builds fasten alone,
# configures only when an option changed, and a second call does nothing
# but run fasten.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../scripts" && pwd)

# project: makes ./project, with a copy of the scripts that build it.
project() {
  mkdir -p project/scripts project/tests
  cp "$scripts/common.sh" "$scripts/run" project/scripts/
  cat >project/meson.build <<'MESON'
project('scripts-test', 'cpp')
executable('fasten', 'fasten.cc')
executable('fasten-etcd', 'fasten.cc')
subdir('tests')
MESON
  echo "executable('unit-tests', 'unit.cc')" >project/tests/meson.build
  printf '%s\n' '#include <cstdio>' \
    'int main(int argc, char** argv) { for (int i = 1; i < argc; ++i) std::puts(argv[i]); }' \
    >project/fasten.cc
  echo 'int main() {}' >project/tests/unit.cc
}

# unchanged_since FILE: fails naming what in project/build is newer than
# FILE, but for the options stamp, which each build touches.
unchanged_since() {
  local changed
  changed=$(find project/build -newer "$1" ! -name fasten-options ! -name fasten-options.new)
  [ -z "$changed" ] || fail "changed: ${changed//$'\n'/ }"
}

werror() {
  meson introspect --buildoptions project/build | python3 -c \
    'import json, sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "werror"][0])'
}

test_scripts_run_builds_fasten_alone_and_runs_it_with_its_arguments() {
  project
  expect_eq "--version
a b" "$(project/scripts/run --version 'a b')"
  [ -x project/build/fasten ] || fail "no fasten"
  [ ! -e project/build/tests/unit-tests ] || fail "scripts/run built the tests"
  expect_eq True "$(werror)" "werror"
}

test_scripts_run_builds_fasten_etcd_too_for_a_lock_in_etcd() {
  project
  project/scripts/run exclusive /tmp/x.lock true >/dev/null
  [ ! -e project/build/fasten-etcd ] || fail "fasten-etcd built for a lock file"
  project/scripts/run exclusive etcd://h:1/x true >/dev/null
  [ -x project/build/fasten-etcd ] || fail "no fasten-etcd for an etcd lock"
}

test_a_second_scripts_run_neither_reconfigures_nor_rebuilds() {
  project
  project/scripts/run >/dev/null
  touch before
  expect_eq "--version" "$(project/scripts/run --version 2>&1)"
  unchanged_since before
}

test_build_configures_again_only_when_an_option_changes() {
  project
  (. project/scripts/common.sh && build "$PWD/project/build" -Dwerror=true -Doptimization=1)
  [ -x project/build/tests/unit-tests ] || fail "build without targets left out the tests"
  # What scripts/run gives is already applied: nothing to do.
  touch before
  project/scripts/run >/dev/null
  unchanged_since before
  (. project/scripts/common.sh && build "$PWD/project/build" -Dwerror=false -- fasten)
  expect_eq False "$(werror)" "werror after -Dwerror=false"
  project/scripts/run >/dev/null
  expect_eq True "$(werror)" "werror after scripts/run"
}

test_a_meson_configure_by_hand_is_noticed() {
  project
  project/scripts/run >/dev/null
  meson configure project/build -Dwerror=false >/dev/null
  project/scripts/run >/dev/null
  expect_eq True "$(werror)" "werror"
}

# Stand-ins for dpkg-query and apt-get that log how they were called.
fake_packaging() {
  mkdir bin
  cat >bin/dpkg-query <<'SH'
#!/bin/sh
echo "$*" >>"$LOG"
shift 2
for package; do
  case " $MISSING " in
  *" $package "*) echo "dpkg-query: no packages found matching $package" >&2 ;;
  *) echo "$package install ok installed" ;;
  esac
done
SH
  printf '#!/bin/sh\necho "apt-get $*" >>"$LOG"\n' >bin/apt-get
  printf '#!/bin/sh\n"$@"\n' >bin/sudo
  chmod +x bin/*
}

test_ensure_packages_asks_dpkg_once_and_installs_only_what_is_missing() {
  project
  fake_packaging
  local log=$PWD/log
  (export PATH=$PWD/bin:$PATH LOG=$log MISSING= && . project/scripts/common.sh && ensure_packages g++ meson ninja-build)
  expect_eq 1 "$(grep -c -- '-W' log)" "dpkg-query calls"
  ! grep -q apt-get log || fail "installed: $(cat log)"
  rm log
  local err
  err=$(export PATH=$PWD/bin:$PATH LOG=$log MISSING="meson doctest-dev" &&
    . project/scripts/common.sh && ensure_packages g++ meson ninja-build doctest-dev 2>&1)
  expect_contains "$err" "Installing meson doctest-dev..."
  expect_contains "$(cat log)" "install -y -qq --no-install-recommends meson doctest-dev"
}

run_suite
