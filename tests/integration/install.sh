#!/usr/bin/env bash
# `meson install` puts fasten, its manual, libfasten, its headers, fasten.pc
# and the shell completions in place, and another meson project builds
# against them with dependency('fasten').
. "$(dirname "$0")/lib.sh"
: "${FASTEN_BUILD_DIR:?FASTEN_BUILD_DIR must name the build directory}"

install_into() {
  meson install -C "$FASTEN_BUILD_DIR" --destdir "$1" --no-rebuild --quiet >/dev/null 2>&1 ||
    fail "meson install failed"
}

test_meson_install_puts_everything_in_place() {
  install_into "$PWD/root"
  local prefix
  prefix=$(meson introspect "$FASTEN_BUILD_DIR" --buildoptions |
    python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
  local file
  for file in bin/fasten share/man/man1/fasten.1 include/fasten/lock/lock.h include/fasten/lock/status.h; do
    [ -e "root$prefix/$file" ] || fail "not installed: $prefix/$file"
  done
  find root -name fasten.pc | grep -q . || fail "fasten.pc not installed"
  find root -name 'libfasten.so*' | grep -q . || fail "libfasten not installed"
}

test_the_installed_fasten_hands_etcd_locks_to_the_installed_fasten_etcd() {
  [ -x "$FASTEN_BUILD_DIR/fasten-etcd" ] || skip "a build without etcd installs no fasten-etcd"
  install_into "$PWD/root"
  local prefix
  prefix=$(build_option prefix)
  [ -x "root$prefix/$(build_option libexecdir)/fasten/fasten-etcd" ] || fail "fasten-etcd is not in libexecdir/fasten"
  # Found from where fasten is, though the tree is not at its prefix: the URL
  # is fasten-etcd's to read, and it refuses one without endpoints.
  FASTEN_ETCD_ENDPOINTS='' expect_status 64 "root$prefix/bin/fasten" status etcd:///jobs 2>err
  expect_contains "$(cat err)" "FASTEN_ETCD_ENDPOINTS"
}

# build_option NAME: the value of meson option NAME in the build directory.
build_option() {
  meson introspect "$FASTEN_BUILD_DIR" --buildoptions |
    python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == sys.argv[1]))' "$1"
}

test_meson_install_puts_the_completions_where_each_shell_looks() {
  install_into "$PWD/root"
  local prefix datadir bash_dir
  prefix=$(build_option prefix)
  datadir=$prefix/$(build_option datadir)
  # bash-completion's own directory, under fasten's datadir.
  bash_dir=$datadir/bash-completion/completions
  if pkg-config --exists bash-completion; then
    bash_dir=$(pkg-config --define-variable=datadir="$datadir" --variable=completionsdir bash-completion)
  fi
  local file
  for file in "$bash_dir/fasten" "$datadir/zsh/site-functions/_fasten" \
    "$datadir/fish/vendor_completions.d/fasten.fish"; do
    [ -f "root$file" ] || fail "not installed: $file" "installed:" "$(find root -path '*complet*' -o -path '*site-functions*')"
  done
  # bash-completion finds it by the command's name, as it does at the first Tab.
  if [ -r /usr/share/bash-completion/bash_completion ]; then
    XDG_DATA_DIRS=$PWD/root$datadir bash --norc --noprofile -c '
      . /usr/share/bash-completion/bash_completion
      _completion_loader fasten
      complete -p fasten' >loader.out 2>&1 || { cat loader.out >&2; fail "bash-completion does not load the installed completion"; }
    expect_contains "$(cat loader.out)" "-F _fasten fasten"
  fi
}

test_a_meson_project_uses_dependency_fasten() {
  install_into "$PWD/root"
  mkdir consumer
  cat >consumer/meson.build <<'MESON'
project('consumer', 'cpp', default_options: ['cpp_std=c++20'])
executable('consumer', 'main.cc', dependencies: dependency('fasten'))
MESON
  cat >consumer/main.cc <<'CC'
#include <lock/lock.h>
#include <cstdio>
int main(int argc, char** argv) {
  if (argc != 2) {
    return 2;
  }
  auto result = fasten::with_lock(argv[1], fasten::LockMode::exclusive, std::chrono::seconds(1), [] { return 42; });
  if (!result) {
    std::fprintf(stderr, "%s\n", result.error().message().c_str());
    return 1;
  }
  return result.value() == std::optional<int>(42) ? 0 : 3;
}
CC
  local pc_dir
  pc_dir=$(dirname "$(find "$PWD/root" -name fasten.pc)")
  PKG_CONFIG_PATH=$pc_dir PKG_CONFIG_SYSROOT_DIR=$PWD/root \
    meson setup consumer/build consumer >setup.log 2>&1 || { cat setup.log >&2; fail "the consumer did not configure"; }
  ninja -C consumer/build >build.log 2>&1 || { cat build.log >&2; fail "the consumer did not build"; }
  LD_LIBRARY_PATH=$(dirname "$(find "$PWD/root" -name 'libfasten.so' | head -1)") \
    expect_status 0 consumer/build/consumer "$PWD/lock"
}

run_suite
