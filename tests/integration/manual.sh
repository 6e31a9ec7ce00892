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

run_suite
