#!/usr/bin/env bash
# The manual page: well-formed, and it documents every option --help offers.
. "$(dirname "$0")/lib.sh"
: "${FASTEN_MANUAL:?FASTEN_MANUAL must name man/fasten.1}"

test_the_manual_page_has_no_groff_warnings() {
  local warnings
  warnings=$(groff -man -ww -z "$FASTEN_MANUAL" 2>&1)
  expect_eq "" "$warnings" "groff warnings"
}

test_the_manual_has_every_section_and_every_option_of_help() {
  local section option
  for section in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" ENVIRONMENT NOTES EXAMPLES "SEE ALSO"; do
    grep -q "^\.SH \"\?$section\"\?$" "$FASTEN_MANUAL" || fail "no section $section"
  done
  for option in $("$FASTEN" exclusive --help | grep -o -- '--[a-z-]*' | sort -u); do
    grep -q -- "${option//-/\\\\-}" "$FASTEN_MANUAL" || fail "the manual does not document $option"
  done
}

# help_option_names [SUBCOMMAND]: the names that `fasten [SUBCOMMAND] --help`
# lists under Options (-w and --timeout for "-w,--timeout SECONDS"), one a line.
help_option_names() {
  "$FASTEN" "$@" --help | awk '
    /^Options:/ { inside = 1; next }
    inside && /^$/ { inside = 0 }
    inside { n = split($1, names, ","); for (i = 1; i <= n; i++) print names[i] }
  '
}

# The OPTIONS section is the reference: each entry's tag (the line after
# .TP) names the options it documents, and they must be the options that
# the --help of fasten and of its subcommands accept, no more and no fewer.
test_the_options_section_documents_exactly_the_options_of_every_help() {
  local help manual subcommand
  help=$(for subcommand in "" exclusive read write status unlock; do
    help_option_names $subcommand
  done | LC_ALL=C sort -u)
  [ "$(wc -l <<<"$help")" -ge 15 ] || fail "read too few options from --help:" "$help"
  manual=$(awk '/^\.SH "?OPTIONS"?$/ { on = 1; next } /^\.SH/ { on = 0 }
      on && previous == ".TP" { print } { previous = $0 }' "$FASTEN_MANUAL" |
    sed 's/\\-/-/g' | grep -oE -- '(^|[ "])--?[A-Za-z][A-Za-z-]*' | tr -d ' "' | LC_ALL=C sort -u)
  local missing extra
  missing=$(LC_ALL=C comm -23 <(echo "$help") <(echo "$manual") | tr '\n' ' ')
  extra=$(LC_ALL=C comm -13 <(echo "$help") <(echo "$manual") | tr '\n' ' ')
  expect_eq "" "$missing" "options in --help that the manual's OPTIONS section does not document"
  expect_eq "" "$extra" "options the manual's OPTIONS section documents that no --help accepts"
}

# manual_text [SECTION]: the manual (or one section) as rendered, on one
# line: no hyphenation, no line breaks, no bold or underline.
manual_text() {
  local source=$FASTEN_MANUAL
  if [ $# -gt 0 ]; then
    source=$(mktemp)
    awk -v section="$1" '/^\.TH/ { print } $0 ~ "^\\.SH \"?" section "\"?$" { on = 1; print; next }
      /^\.SH/ { on = 0 } on' "$FASTEN_MANUAL" >"$source"
  fi
  groff -man -Tutf8 -rLL=5000n -rHY=0 -P-cbou "$source" 2>/dev/null | tr -s ' \n' '  '
  [ $# -eq 0 ] || rm -f "$source"
}

# status lists flock(2) holders (status.sh), and the manual says so everywhere.
test_the_manual_never_says_that_status_hides_flock_locks() {
  local text
  text=$(manual_text)
  expect_contains "$text" "flock_holders"
  ! grep -qiE 'status (does not|doesn.t|never) shows? flock\(2\)' <<<"$text" ||
    fail "the manual says that fasten status does not show flock(2) locks"
}

# SECURITY warns against world-writable lock directories for privileged jobs.
test_the_examples_keep_no_lock_in_a_directory_security_warns_against() {
  local examples
  examples=$(manual_text EXAMPLES)
  [ -n "$examples" ] || fail "no EXAMPLES section rendered"
  ! grep -qE '/(run|var)/lock/' <<<"$examples" ||
    fail "an example keeps its lock in /run/lock or /var/lock, which SECURITY warns against:" \
      "$(grep -oE '[^ ]*/(run|var)/lock/[^ ]*' <<<"$examples")"
}

# A writer that waits shuts out new readers, a nested reader of the same
# lock too: the manual warns, and says to take the lock once.
test_the_manual_says_when_a_nested_fasten_re_enters_and_when_it_is_refused() {
  local text phrase
  text=$(manual_text | tr -s ' \n' '  ')
  for phrase in "Composing locks" "It re-enters the hold" "It is refused at once, with status 65" \
    "an upgrade" "The environment (FASTEN_LOCK) proves nothing"; do
    grep -qF -- "$phrase" <<<"$text" || fail "the manual does not say: $phrase"
  done
}

# src/run/exit-codes.h is the one list of fasten's own exit statuses: --help,
# the manual's EXIT STATUS and the README's table must each name all of them.
test_help_the_manual_and_the_readme_give_every_exit_status_of_the_code() {
  : "${FASTEN_SOURCE_ROOT:?FASTEN_SOURCE_ROOT must name the source tree}"
  local statuses status help manual
  statuses=$(sed -n 's/^inline constexpr int k_[a-z_]* = \([0-9]*\);.*/\1/p' \
    "$FASTEN_SOURCE_ROOT/src/run/exit-codes.h" | grep -v '^128$')
  [ "$(wc -w <<<"$statuses")" -ge 10 ] || fail "read too few statuses from exit-codes.h: $statuses"
  help=$("$FASTEN" exclusive --help)
  manual=$(awk '/^\.SH "?EXIT STATUS/ { on = 1; next } /^\.SH/ { on = 0 } on' "$FASTEN_MANUAL")
  for status in $statuses; do
    grep -q -- " $status " <<<"$help" || fail "exclusive --help does not give exit status $status"
    grep -qx -- "$status" <<<"$manual" || fail "the manual's EXIT STATUS does not give $status"
    grep -q -- "^| .* | $status\b" "$FASTEN_SOURCE_ROOT/README.md" ||
      fail "the README's exit-status table does not give $status"
  done
}

# The reference comes first and reads at a glance: OPTIONS, EXIT STATUS and
# ENVIRONMENT before the DETAILS they point to, and no entry of theirs longer
# than nine lines at 80 columns (the rest of a fact lives under DETAILS).
test_the_reference_comes_first_and_each_entry_is_short() {
  local order
  order=$(grep -E '^\.SH' "$FASTEN_MANUAL" | tr -d '"' | cut -c5- | tr '\n' ',')
  case "$order" in
    *OPTIONS,EXIT\ STATUS,ENVIRONMENT,DETAILS,*) ;;
    *) fail "the reference sections do not come first, in order: $order" ;;
  esac
  local long
  long=$(groff -man -Tutf8 -rLL=80n -P-cbou "$FASTEN_MANUAL" 2>/dev/null | awk '
    /^[A-Z]/ { section = $0; next }
    section !~ /^(OPTIONS|EXIT STATUS|ENVIRONMENT)$/ { next }
    /^       [^ ]/ { if (lines > 9) print entry " (" lines " lines)"; entry = $1; lines = 0 }
    /^ *$/ { next }
    { lines++ }
    END { if (lines > 9) print entry " (" lines " lines)" }')
  expect_eq "" "$long" "reference entries longer than nine lines"
}

run_suite
