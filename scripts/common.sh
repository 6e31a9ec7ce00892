# Shared by scripts/run, scripts/test and the other scripts: install what is
# missing from Debian's packages, and configure and build a build directory.
# Everything here reports on stderr; stdout stays fasten's.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# What building and testing fasten needs, as Debian packages.
build_packages=(g++ meson ninja-build pkg-config libcli11-dev libspdlog-dev libfmt-dev doctest-dev
  libssl-dev nlohmann-json3-dev ccache)

# meson compiles through ccache when it is installed. Paths under the
# project's root are hashed as relative ones, so that the build directories
# of scripts/test, and a clone at another path, share one another's objects:
# a second run compiles only what changed.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}

# etcd-server and etcd-client for the etcd suite, which starts its own etcd;
# bash-completion, zsh and fish for the completion suite; clang and its
# runtimes (libFuzzer, the sanitizers) for the fuzz targets.
test_packages=(groff-base python3 python3-fasteners util-linux procps strace etcd-server etcd-client
  openssl bash-completion zsh fish clang libclang-rt-dev)

# ensure_packages PACKAGE...: installs those that are not installed yet, quietly.
# One dpkg-query for all of them: it is on the path of every scripts/run.
ensure_packages() {
  local -A installed=()
  local missing=() package status
  while read -r package status; do
    [ "$status" != "install ok installed" ] || installed[$package]=1
  done < <(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null || true)
  for package in "$@"; do
    [ -n "${installed[$package]:-}" ] || missing+=("$package")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "Installing ${missing[*]}..." >&2
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  local log
  log=$(mktemp)
  if ! { "${sudo[@]}" apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "Could not install ${missing[*]}" >&2
    return 1
  fi
  rm -f "$log"
}

# quietly COMMAND...: runs COMMAND with its output kept back, and shows that
# output on stderr only when it fails.
quietly() {
  local log status=0
  log=$(mktemp)
  "$@" >"$log" 2>&1 || status=$?
  [ "$status" -eq 0 ] || cat "$log" >&2
  rm -f "$log"
  return "$status"
}

# options_applied DIR OPTION...: whether every OPTION (-Dname=value) is one
# that DIR/fasten-options records as given to meson, and nobody configured
# DIR since (meson-private/coredata.dat is newer when someone did).
options_applied() {
  local dir=$1 stamp=$1/fasten-options option
  shift
  [ -f "$stamp" ] && [ ! "$dir/meson-private/coredata.dat" -nt "$stamp" ] || return 1
  for option in "$@"; do
    grep -qxF -- "$option" "$stamp" || return 1
  done
}

# record_options DIR OPTION...: adds OPTIONs to DIR/fasten-options, in place
# of earlier values of the same options (meson keeps the others).
record_options() {
  local stamp=$1/fasten-options option kept=()
  shift
  if [ -f "$stamp" ]; then
    while IFS= read -r option; do
      local name=${option%%=*} given replaced=false
      for given in "$@"; do
        [ "${given%%=*}" != "$name" ] || replaced=true
      done
      $replaced || kept+=("$option")
    done <"$stamp"
  fi
  printf '%s\n' "${kept[@]}" "$@" | grep -v '^$' >"$stamp.new" || true
  mv "$stamp.new" "$stamp"
}

# configure DIR [MESON_OPTION...]: sets DIR up with those options the first
# time; later, runs `meson configure` only when an option differs from what
# DIR/fasten-options recorded, since it regenerates the whole build.
configure() {
  local dir=$1
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    quietly meson setup "$dir" "$root" "$@" || return 1
    rm -f "$dir/fasten-options"
  elif [ $# -eq 0 ] || options_applied "$dir" "$@"; then
    return 0
  else
    quietly meson configure "$dir" "$@" || return 1
  fi
  record_options "$dir" "$@"
}

# build DIR [MESON_OPTION...] [-- TARGET...]: configures DIR (see configure)
# and builds TARGETs, or everything, quietly unless something fails.
build() {
  local dir=$1 options=() targets=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    options+=("$1")
    shift
  done
  [ $# -eq 0 ] || { shift; targets=("$@"); }
  configure "$dir" "${options[@]}" || return 1
  quietly ninja -C "$dir" "${targets[@]}" || return 1
  # A build that regenerated itself (meson.build changed) rewrote coredata.dat
  # with the same options: they still hold.
  [ ! -f "$dir/fasten-options" ] || touch "$dir/fasten-options"
}
