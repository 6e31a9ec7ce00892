# Shared by scripts/run, scripts/test and the other scripts: install what is
# missing from Debian's packages, and configure and build a build directory.
# Everything here reports on stderr; stdout stays fasten's.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# What building and testing fasten needs, as Debian packages.
build_packages=(g++ meson ninja-build pkg-config libcli11-dev libspdlog-dev libfmt-dev doctest-dev
  libcurl4-openssl-dev nlohmann-json3-dev)
# etcd-server and etcd-client for the etcd suite, which starts its own etcd;
# bash-completion, zsh and fish for the completion suite.
test_packages=(groff-base python3 python3-fasteners util-linux procps etcd-server etcd-client
  bash-completion zsh fish)

# ensure_packages PACKAGE...: installs those that are not installed yet, quietly.
ensure_packages() {
  local missing=() package
  for package in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$package")
    fi
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

# build DIR [MESON_OPTION...]: configures DIR (once) and builds it, quietly
# unless something fails.
build() {
  local dir=$1
  shift
  local log
  log=$(mktemp)
  if [ ! -f "$dir/build.ninja" ]; then
    if ! meson setup "$dir" "$root" "$@" >"$log" 2>&1; then
      cat "$log" >&2
      rm -f "$log"
      return 1
    fi
  elif [ $# -gt 0 ] && ! meson configure "$dir" "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  if ! ninja -C "$dir" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}
