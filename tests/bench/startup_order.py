#!/usr/bin/python3
"""Writes src/programs/startup-path.ld: the code that `fasten MODE LOCK COMMAND`
runs, gathered at the start of fasten's text (scripts/startup-order runs this).

    /usr/bin/python3 tests/bench/startup_order.py --build-dir DIR [--output FILE]

A static fasten has 1.4 MB of text, and the kernel maps it 64 kB at a fault:
spread over the binary in link order, the 180 kB or so that a plain run
executes touched nearly every 64 kB window of it, some twenty page faults at
every start (BENCHMARKS.md). The linker script this writes names the input
sections that hold that code, so that the linker lays them out together in an
output section of their own, before the rest of .text, where a run faults in
a few windows instead.

Which sections: the functions that callgrind sees run in `fasten exclusive L
/bin/true`, `read` and `write` alike, and in the vforked child until its exec
(the child of a run whose command does not exist, which returns to report
it); the code at which the same run, outside valgrind, takes its page faults
(perf, where it runs: it catches glibc's vDSO set-up, which valgrind does not
offer); and the variants of glibc's string functions for AVX2 and AVX-512
beside the one that ran (valgrind's CPU has no AVX-512, so glibc chose
another there). A name that a later change leaves matching nothing costs
nothing but the layout: the linker ignores it, and the build still links.

It relinks DIR's fasten with a link map into a temporary directory; DIR is
not changed.
"""

import argparse
import bisect
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# glibc's variants of a string function, as its multiarch objects name them.
# One that ran on some CPU names its function's family (memset-sse2-unaligned-
# erms.o: memset); of that family, those for AVX2 and AVX-512 are taken too.
VARIANT = re.compile(r"^([a-z0-9_]+)-(sse2|ssse3|sse4|avx|evex)")
FAST_VARIANT = re.compile(r"-(avx2|avx|evex|evex512|avx512)([-_.]|$)")
# Those for transactional memory and without vzeroupper: on few CPUs.
RARE_VARIANT = re.compile(r"rtm|no-vzeroupper")


def relink(build_dir, out_dir, script=None):
    """DIR's fasten linked again as OUT/fasten, with a map in OUT/fasten.map,
    and with `script` in place of the build's startup-path.ld (none without)."""
    subprocess.run(["ninja", "-C", build_dir, "fasten"], check=True, stdout=subprocess.DEVNULL)
    commands = subprocess.run(["ninja", "-C", build_dir, "-t", "commands", "fasten"], check=True,
                              capture_output=True, text=True).stdout.strip().split("\n")
    words = shlex.split(commands[-1])
    words = [w for w in words if not w.startswith("-Wl,-T,")] + (["-Wl,-T," + script] if script else [])
    at = words.index("-o")
    binary = os.path.join(out_dir, "fasten")
    words[at + 1] = binary
    words.append("-Wl,-Map=" + binary + ".map")
    subprocess.run(words, cwd=build_dir, check=True)
    return binary


def text_sections(map_file):
    """The input sections of .text* in the map: (address, size, section, file), by address."""
    sections = []
    pending = None
    in_map = False
    for line in open(map_file):
        line = line.rstrip("\n")
        if line.startswith("Linker script and memory map"):
            in_map = True
        if not in_map:
            continue
        whole = re.match(r"^ (\.text\S*)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S.*)$", line)
        if whole:
            name, address, size, file = whole.groups()
            sections.append((int(address, 16), int(size, 16), name, file.strip()))
            pending = None
            continue
        alone = re.match(r"^ (\.text\S*)$", line)
        if alone:
            pending = alone.group(1)
            continue
        if pending:
            rest = re.match(r"^\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S.*)$", line)
            if rest:
                address, size, file = rest.groups()
                sections.append((int(address, 16), int(size, 16), pending, file.strip()))
            pending = None
    return sorted(s for s in sections if s[1] > 0)


def function_addresses(binary):
    """Each function symbol of `binary` and its addresses (local ones may repeat)."""
    out = subprocess.run(["nm", "--defined-only", binary], check=True, capture_output=True, text=True).stdout
    addresses = {}
    for line in out.split("\n"):
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwWiI":
            addresses.setdefault(parts[2], []).append(int(parts[0], 16))
    return addresses


def callgrind_functions(binary, args, directory, child_only=False):
    """The (mangled) functions callgrind saw run in `binary ARGS`: the parent's,
    or with child_only, those of the child it forked."""
    pattern = os.path.join(directory, "callgrind.%p")
    subprocess.run(["valgrind", "--tool=callgrind", "--demangle=no", "--callgrind-out-file=" + pattern, binary, *args],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    profiles = []  # (pid, functions)
    for entry in os.listdir(directory):
        if entry.startswith("callgrind."):
            path = os.path.join(directory, entry)
            with open(path) as profile:
                profiles.append((int(entry.split(".")[1]), set(re.findall(r"^c?fn=\(\d+\) (\S+)", profile.read(), re.M))))
            os.unlink(path)
    # The parent's profile has the lowest pid; a forked child's, a higher one.
    profiles.sort()
    if child_only:
        return set().union(*(functions for _, functions in profiles[1:]))
    return profiles[0][1] if profiles else set()


def perf_addresses(binary, args):
    """The instruction addresses at which `binary ARGS` took its page faults."""
    if shutil.which("perf") is None:
        return set()
    with tempfile.NamedTemporaryFile(suffix=".data") as data:
        recorded = subprocess.run(["perf", "record", "-q", "-e", "page-faults", "-c", "1", "-o", data.name, binary,
                                   *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if recorded.returncode != 0:
            return set()
        script = subprocess.run(["perf", "script", "-i", data.name, "-F", "comm,ip"], capture_output=True,
                                text=True).stdout
    name = os.path.basename(binary)[:15]
    return {int(parts[1], 16) for parts in (line.split() for line in script.split("\n"))
            if len(parts) == 2 and parts[0] == name}


def member(file):
    """(archive, member) of a map's file column; archive is None for an object."""
    inside = re.match(r"(.*)\((.*)\)$", file)
    if inside:
        return os.path.basename(inside.group(1)), os.path.basename(inside.group(2))
    return None, os.path.basename(file)


def pattern(section, file):
    """The input section description that names `section` of `file`."""
    archive, name = member(file)
    if section.startswith(".text._") or section.startswith(".text.startup.") or \
            (section.startswith(".text.") and archive and archive.startswith("libstdc++")):
        return f"*({section})"  # a section of its own function: its name is enough
    if archive and "fasten" not in archive:
        return f"*:{name}({section})"  # glibc's and libgcc's: .text of one archive member
    return f"*{name}({section})"


def chosen_patterns(sections, addresses):
    """The input section descriptions of `sections` that hold `addresses`, and
    of the fast variants of the glibc functions among them."""
    starts = [s[0] for s in sections]
    chosen = set()
    for address in addresses:
        at = bisect.bisect_right(starts, address) - 1
        if at >= 0 and address < sections[at][0] + sections[at][1]:
            chosen.add(at)
    families = set()
    for i in chosen:
        variant = VARIANT.match(member(sections[i][3])[1])
        if variant:
            families.add(variant.group(1))
    for i, (_, _, _, file) in enumerate(sections):
        name = member(file)[1]
        variant = VARIANT.match(name)
        if variant and variant.group(1) in families and FAST_VARIANT.search(name) and not RARE_VARIANT.search(name):
            chosen.add(i)
    return {pattern(sections[i][2], sections[i][3]) for i in chosen}


def superseded(description, patterns):
    """Whether `description` names a glibc variant for AVX2 of a function that
    has one for AVX-512 among `patterns` too, which a CPU with AVX-512 runs
    instead."""
    name = re.match(r"\*:([^(]+)\(", description)
    variant = VARIANT.match(name.group(1)) if name else None
    if not variant or variant.group(2) != "avx" or "avx512" in name.group(1):
        return False
    family = variant.group(1) + "-"
    return any(p.startswith("*:" + family) and re.search(r"-(evex|avx512)", p) for p in patterns)


def write_script(path, patterns, sections):
    """The linker script: `patterns` in the order of the sections they name in
    a link without it (link order), one output section before .text; the
    AVX2 variants of functions with AVX-512 ones last, so that on a CPU with
    AVX-512 the code it runs ends a window earlier."""
    first = {}
    for address, size, section, file in sections:
        first.setdefault(pattern(section, file), (address, size))
    ordered = sorted(patterns, key=lambda p: (superseded(p, patterns), first.get(p, (0, 0))[0], p))
    with open(path, "w") as out:
        out.write("/* Written by scripts/startup-order (tests/bench/startup_order.py): the code\n"
                  "   that `fasten MODE LOCK COMMAND` runs, laid out together before the rest\n"
                  "   of .text, so that a start faults in a few 64 kB windows of it rather than\n"
                  "   nearly all (BENCHMARKS.md). Only the layout depends on it: a name that\n"
                  "   matches nothing is left out, and fasten links and runs the same. */\n"
                  "SECTIONS\n{\n  .text.startup_path :\n  {\n")
        out.write("".join(f"    {p}\n" for p in ordered) + "  }\n}\nINSERT BEFORE .text;\n")
    return sum(first.get(p, (0, 0))[1] for p in ordered)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--output", default=os.path.join(ROOT, "src", "programs", "startup-path.ld"))
    options = parser.parse_args()
    build_dir = os.path.abspath(options.build_dir)

    with tempfile.TemporaryDirectory() as work:
        # Link order, without any startup-path.ld: what the script reorders.
        binary = relink(build_dir, work)
        base = text_sections(binary + ".map")
        lock = os.path.join(work, "lock")
        open(lock, "w").close()
        functions = set()
        for mode in ("exclusive", "read", "write"):
            functions |= callgrind_functions(binary, [mode, lock, "/bin/true"], work)
        functions |= callgrind_functions(binary, ["exclusive", lock, os.path.join(work, "no-such-command")], work,
                                         child_only=True)
        symbols = function_addresses(binary)
        addresses = {a for name in functions for a in symbols.get(name.split("'")[0], [])}
        patterns = chosen_patterns(base, addresses | perf_addresses(binary, ["exclusive", lock, "/bin/true"]))
        # A page fault outside the gathered code names code that ran there
        # unseen (a window's first touch hides the rest of it): relinked with
        # the script so far, until the faults name nothing new.
        candidate = os.path.join(work, "startup-path.ld")
        for _ in range(4):
            write_script(candidate, patterns, base)
            binary = relink(build_dir, work, candidate)
            more = chosen_patterns(text_sections(binary + ".map"),
                                   perf_addresses(binary, ["exclusive", lock, "/bin/true"])) - patterns
            if not more:
                break
            patterns |= more
        size = write_script(options.output, patterns, base)
    print(f"{options.output}: {len(patterns)} input sections, {size:,} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
