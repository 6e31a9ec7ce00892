#!/usr/bin/env bash
# tests/bench/variants.sh [WORK_DIR]: what build and spawn changes would buy.
#
# Exports the committed tree (git archive HEAD: work in progress is left out)
# to WORK_DIR (default: a new temporary directory), builds fasten there in
# several variants, each in its own build directory, and runs the
# command-level figures of the bench against each (bench.py --fasten
# VARIANT), then prints one line per variant. The repository is never touched.
#
#   base        the release build as it is
#   no-etcd     -Detcd=disabled: no libcurl (and its 30-odd libraries) to load;
#               what loading libcurl only for etcd:// locks would give
#   vfork       no-etcd + fork() -> vfork() in src/run/spawn-linux.cc
#   cxx-static  no-etcd + libfasten linked in (-Ddefault_library=static),
#               -static-libstdc++ -static-libgcc, spdlog and fmt header-only:
#               the executable needs libc alone
#   cxx-vfork   cxx-static + vfork
#   all-static  cxx-vfork linked -static (glibc too), with
#               -ffunction-sections -fdata-sections -Wl,--gc-sections
#
# The patches are sed edits of two lines; if the source has moved on so that
# one no longer applies, the variants that need it are skipped with a note.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=${1:-$(mktemp -d /tmp/fasten-variants.XXXXXX)}
figures=${FIGURES:-overhead,contended,cmd-handoff,memory}
mkdir -p "$work"
echo "variants: working in $work" >&2

# The bench's own build (bench-helper) first; then bench.py runs from it. If
# the working tree does not build just now, an earlier build will do.
bench_build=${BENCH_BUILD_DIR:-$root/build-bench}
if ! "$root/scripts/bench" --quick --only memory >/dev/null; then
  [ -x "$bench_build/tests/bench/bench-helper" ] || exit 1
  echo "variants: using the bench programs already in $bench_build" >&2
fi

copy() { # copy NAME: the committed tree
  rm -rf "${work:?}/$1"
  mkdir -p "$work/$1"
  git -C "$root" archive HEAD | tar -xf - -C "$work/$1"
}

copy src
copy src-vfork
copy src-ho
copy src-ho-vfork
patched=true
for tree in src-vfork src-ho-vfork; do
  f=$work/$tree/src/run/spawn-linux.cc
  grep -q 'const pid_t child = fork();' "$f" || { echo "variants: fork() call not found in $f" >&2; patched=false; }
  sed -i 's/const pid_t child = fork();/const pid_t child = vfork();/' "$f"
done
for tree in src-ho src-ho-vfork; do
  f=$work/$tree/meson.build
  grep -q "^ *spdlog = dependency('spdlog')" "$f" || { echo "variants: spdlog dependency not found in $f" >&2; patched=false; }
  sed -i "s/^\( *\)spdlog = dependency('spdlog')/\1spdlog = declare_dependency(compile_args: ['-DSPDLOG_HEADER_ONLY', '-DSPDLOG_FMT_EXTERNAL', '-DFMT_HEADER_ONLY'])/" "$f"
done
$patched || echo "variants: some patches did not apply; their variants measure the unpatched source" >&2

build() { # build NAME TREE MESON_OPTION...
  local name=$1 tree=$2
  shift 2
  if [ ! -f "$work/b-$name/build.ninja" ]; then
    meson setup "$work/b-$name" "$work/$tree" -Dbuildtype=release -Dtests=false "$@" >"$work/b-$name.log" 2>&1 ||
      { cat "$work/b-$name.log" >&2; return 1; }
  fi
  ninja -C "$work/b-$name" fasten >>"$work/b-$name.log" 2>&1 || { cat "$work/b-$name.log" >&2; return 1; }
  echo "variants: built $name" >&2
}
cxx=(-Ddefault_library=static "-Dcpp_link_args=['-static-libstdc++','-static-libgcc']")
build base src
build no-etcd src -Detcd=disabled
build vfork src-vfork -Detcd=disabled
build cxx-static src-ho -Detcd=disabled "${cxx[@]}"
build cxx-vfork src-ho-vfork -Detcd=disabled "${cxx[@]}"
build all-static src-ho-vfork -Detcd=disabled -Ddefault_library=static \
  "-Dcpp_args=['-ffunction-sections','-fdata-sections']" "-Dcpp_link_args=['-static','-Wl,--gc-sections']"

for name in base no-etcd vfork cxx-static cxx-vfork all-static; do
  echo "variants: measuring $name" >&2
  /usr/bin/python3 "$root/tests/bench/bench.py" --build-dir "$bench_build" --only "$figures" \
    --fasten "$work/b-$name/fasten" --json "$work/$name.json" >"$work/$name.txt"
done

/usr/bin/python3 - "$work" <<'EOF'
import json, os, sys
work = sys.argv[1]
names = ["base", "no-etcd", "vfork", "cxx-static", "cxx-vfork", "all-static"]
print(f"{'variant':<12} {'overhead µs':>12} {'/flock':>7} {'contended':>10} {'cmd hand-off':>13} {'peak RSS kB':>12} {'/flock':>7}")
for name in names:
    f = json.load(open(os.path.join(work, name + ".json")))["figures"]
    o, c, h, m = (f.get(k) for k in ("overhead", "contended", "cmd-handoff", "memory"))
    print(f"{name:<12} {o['contenders']['fasten']['median']:>12.0f} {o['ratios']['fasten/flock']['median']:>6.2f}×"
          f" {c['ratios']['fasten/flock']['median']:>9.2f}× {h['ratios']['fasten/flock']['median']:>12.2f}×"
          f" {m['contenders']['fasten']['median']:>12.0f} {m['ratios']['fasten/flock']['median']:>6.2f}×")
print("(ratios are fasten/flock(1), median of paired runs; each line is its own scripts/bench run)")
EOF
