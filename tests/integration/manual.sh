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

run_suite
