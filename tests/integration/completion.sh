#!/usr/bin/env bash
# The shell completions (src/cli/completions) in the real shells: bash with
# bash-completion, zsh through its completion system on a pseudo-terminal
# (tests/helpers/complete.zsh), and fish's `complete -C`. What they offer
# for subcommands and options is compared with the built fasten's --help, so
# that an option added to fasten and not to a completion fails here.
#
# Environment: FASTEN_COMPLETIONS, the directory of the completion files;
# FASTEN_ZSH_COMPLETE, the zsh driver.
. "$(dirname "$0")/lib.sh"
: "${FASTEN_COMPLETIONS:?FASTEN_COMPLETIONS must name src/cli/completions}"
: "${FASTEN_ZSH_COMPLETE:?FASTEN_ZSH_COMPLETE must name tests/helpers/complete.zsh}"

bash_completion_script=/usr/share/bash-completion/bash_completion
shells=(bash zsh fish)

# The completions find `fasten` on PATH as a user's shell would (fish only
# loads a completion for a command it can run).
PATH=$(cd "$(dirname "$FASTEN")" && pwd):$PATH
export PATH

require_shells() {
  [ -r "$bash_completion_script" ] || fail "bash-completion is missing: apt-get install bash-completion"
  command -v zsh >/dev/null || fail "zsh is missing: apt-get install zsh"
  command -v fish >/dev/null || fail "fish is missing: apt-get install fish"
}

separator=--end-of-matches--

# complete_in SHELL LINE...: what SHELL offers for a Tab at the end of each
# LINE, one a line, then the line $separator, from one SHELL for all.
complete_in() {
  "complete_in_$1" "${@:2}"
}

# bash as bash-completion drives a completion function: COMP_WORDS (split at
# blanks only: the lines here have no = or :), COMP_CWORD, COMP_LINE and
# COMP_POINT, then the function `complete -p fasten` names, then COMPREPLY.
complete_in_bash() {
  bash --norc --noprofile -c '
    . "$1"
    . "$2"
    separator=$3
    shift 3
    # compopt only works inside a completion that bash itself started.
    compopt() { :; }
    spec=$(complete -p fasten) || exit 1
    function=${spec#*-F }
    function=${function%% *}
    for COMP_LINE; do
      COMP_POINT=${#COMP_LINE}
      read -ra COMP_WORDS <<<"$COMP_LINE"
      [[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
      COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
      COMPREPLY=()
      "$function" fasten "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
      printf "%s\n" "${COMPREPLY[@]}" "$separator"
    done
  ' bash "$bash_completion_script" "$FASTEN_COMPLETIONS/fasten.bash" "$separator" "$@"
}

complete_in_zsh() {
  zsh -f "$FASTEN_ZSH_COMPLETE" "$FASTEN_COMPLETIONS" "$@"
}

# fish with a home of its own (it writes its history and variables there),
# and the completions first in $fish_complete_path.
complete_in_fish() {
  mkdir -p fish-home
  HOME=$PWD/fish-home XDG_CONFIG_HOME=$PWD/fish-home/config XDG_DATA_HOME=$PWD/fish-home/data \
    XDG_CACHE_HOME=$PWD/fish-home/cache \
    fish -c '
      set -p fish_complete_path $argv[1]
      for line in $argv[3..-1]
        complete -C $line | string replace -r "\t.*" ""
        echo $argv[2]
      end
    ' "$FASTEN_COMPLETIONS" "$separator" "$@"
}

# expect_completions SHELL LINE WANT [LINE WANT]...: completes every LINE in
# one SHELL, and checks what it offers against WANT: "=LINES" exactly LINES
# (sorted, one a line; "=" for nothing), "+LINES" at least each of LINES,
# "-WORD" anything but WORD.
expect_completions() {
  local shell=$1
  shift
  local lines=() wants=()
  while [ $# -gt 0 ]; do
    lines+=("$1")
    wants+=("$2")
    shift 2
  done
  local offers=() block='' word
  while IFS= read -r word; do
    if [ "$word" = "$separator" ]; then
      offers+=("$(printf '%s' "$block" | sed '/^$/d' | LC_ALL=C sort -u)")
      block=
    else
      block+=$word$'\n'
    fi
  done < <(complete_in "$shell" "${lines[@]}")
  [ ${#offers[@]} -eq ${#lines[@]} ] || fail "$shell answered for ${#offers[@]} of ${#lines[@]} lines"
  local i want got
  for i in "${!lines[@]}"; do
    want=${wants[i]:1}
    got=${offers[i]}
    case ${wants[i]} in
    =*)
      [ "$got" = "$want" ] || fail "$shell: '${lines[i]}<Tab>' offers other words than expected;" \
        "missing: $(LC_ALL=C comm -13 <(echo "$got") <(echo "$want") | tr '\n' ' ')" \
        "not expected: $(LC_ALL=C comm -23 <(echo "$got") <(echo "$want") | tr '\n' ' ')"
      ;;
    +*)
      while IFS= read -r word; do
        grep -qxF -- "$word" <<<"$got" || fail "$shell: '${lines[i]}<Tab>' does not offer '$word', but:" "$got"
      done <<<"$want"
      ;;
    -*) ! grep -qxF -- "$want" <<<"$got" || fail "$shell: '${lines[i]}<Tab>' offers '$want':" "$got" ;;
    esac
  done
}

# help_options [SUBCOMMAND]: the option names that `fasten [SUBCOMMAND] --help`
# lists (-w and --timeout for "-w,--timeout SECONDS"), one a line, sorted.
help_options() {
  "$FASTEN" "$@" --help | awk '
    /^Options:/ { inside = 1; next }
    inside && /^$/ { inside = 0 }
    inside { n = split($1, names, ","); for (i = 1; i <= n; i++) print names[i] }
  ' | LC_ALL=C sort -u
}

# help_valued_options SUBCOMMAND: those that take a value (a word in capitals
# follows the names).
help_valued_options() {
  "$FASTEN" "$1" --help | awk '
    /^Options:/ { inside = 1; next }
    inside && /^$/ { inside = 0 }
    inside && $2 ~ /^[A-Z]+$/ { n = split($1, names, ","); for (i = 1; i <= n; i++) print names[i] }
  ' | LC_ALL=C sort -u
}

# help_subcommands: the subcommands that `fasten --help` lists.
help_subcommands() {
  "$FASTEN" --help | awk '
    /^Subcommands:/ { inside = 1; next }
    inside && /^$/ { inside = 0 }
    inside { print $1 }
  ' | LC_ALL=C sort -u
}

test_a_subcommand_completes_from_its_first_letters() {
  require_shells
  local shell
  for shell in "${shells[@]}"; do
    expect_completions "$shell" "fasten ex" =exclusive "fasten st" =status
  done
}

test_the_subcommands_and_options_offered_are_those_of_help() {
  require_shells
  local checks=("fasten " "=$(help_subcommands)" "fasten -" "=$(help_options)") subcommand want
  [ "${checks[1]}" != = ] || fail "fasten --help lists no subcommand"
  for subcommand in $(help_subcommands); do
    want=$(help_options "$subcommand")
    [ -n "$want" ] || fail "fasten $subcommand --help lists no option"
    checks+=("fasten $subcommand -" "=$want")
  done
  local shell
  for shell in "${shells[@]}"; do
    expect_completions "$shell" "${checks[@]}"
  done
}

test_lock_completes_as_a_file_name() {
  require_shells
  mkdir locks
  : >locks/build.lock
  local shell want subcommand checks
  for shell in "${shells[@]}"; do
    # zsh's match is the last component (it keeps the directory as a prefix).
    want=+locks/build.lock
    [ "$shell" != zsh ] || want=+build.lock
    checks=()
    for subcommand in exclusive read write status; do
      checks+=("fasten $subcommand locks/bu" "$want")
    done
    checks+=("fasten exclusive -n -w 5 locks/bu" "$want" "fasten read -nw 5 locks/bu" "$want")
    expect_completions "$shell" "${checks[@]}"
  done
}

test_nothing_completes_as_the_value_of_an_option_but_fd() {
  require_shells
  # Files that a wrong completion would offer.
  : >a-file
  mkdir a-directory
  local checks=() subcommand option shell
  for subcommand in exclusive read write; do
    for option in $(help_valued_options "$subcommand"); do
      # --fd offers descriptors, --also lock modes (a test of its own each).
      [ "$option" = --fd ] || [ "$option" = --also ] || checks+=("fasten $subcommand $option " "=")
    done
  done
  [ ${#checks[@]} -gt 0 ] || fail "fasten exclusive --help lists no option with a value"
  for shell in "${shells[@]}"; do
    expect_completions "$shell" "${checks[@]}"
  done
}

# --fd offers exactly the descriptors above 2 that a command started from the
# shell inherits (open, not close-on-exec): those `exec 9>FILE` or
# `exec {fd}>FILE` opened, and none that the shell keeps for itself (bash's
# 255, zsh's terminal or the directory its glob reads, fish's own).
test_fd_offers_exactly_the_descriptors_a_command_would_inherit() {
  require_shells
  local fd
  # Only 0, 1, 2, 9 and 12 open, whatever the test runner left open.
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ] && [ -e "/proc/$BASHPID/fd/$fd" ]; then
      eval "exec $fd>&-"
    fi
  done
  exec 9>fd9 12>fd12
  local shell
  for shell in "${shells[@]}"; do
    expect_completions "$shell" \
      "fasten exclusive --fd " "=12
9" "fasten exclusive --fd 1" "=12" \
      "fasten unlock --fd " "=12
9"
  done
  # Quietly: a descriptor that went while they were listed (the shell's
  # own, of the listing) is left out, with no warning on the terminal.
  for shell in "${shells[@]}"; do
    complete_in "$shell" "fasten exclusive --fd " >/dev/null 2>err
    expect_eq "" "$(cat err)" "$shell's stderr while completing --fd"
  done
}

test_also_completes_a_mode_then_a_lock_then_lock_and_the_command() {
  require_shells
  mkdir locks
  : >locks/build.lock
  local shell file
  for shell in "${shells[@]}"; do
    # zsh's match is the last component (it keeps the directory as a prefix).
    file=locks/build.lock
    [ "$shell" != zsh ] || file=build.lock
    expect_completions "$shell" \
      "fasten write --also " "=exclusive
read
write" \
      "fasten read --also w" "=write" \
      "fasten write --also read locks/bu" "+$file" \
      "fasten write --also read locks/build.lock --also exclusive locks/bu" "+$file" \
      "fasten write --also read locks/build.lock locks/bu" "+$file" \
      "fasten write --also read locks/build.lock -n locks/build.lock ech" "+echo" \
      "fasten write --also read locks/build.lock locks/build.lock ech" "+echo"
  done
}

test_after_lock_the_command_completes_as_it_would_alone() {
  require_shells
  local shell
  for shell in "${shells[@]}"; do
    # fasten's own completion, for the command fasten; then ls's in each
    # shell: bash-completion's from `ls --help`, zsh's _ls and fish's ls.fish.
    expect_completions "$shell" \
      "fasten exclusive lock ech" "+echo" \
      "fasten exclusive lock fasten ex" "=exclusive" \
      "fasten read -w 5 lock fasten read -" "=$(help_options read)" \
      "fasten exclusive lock ls --al" "+--all" \
      "fasten write -nv lock -- ls --al" "+--all"
  done
}

test_after_lock_a_dash_offers_the_forms_of_the_command() {
  require_shells
  : >a-file
  local shell
  for shell in "${shells[@]}"; do
    expect_completions "$shell" \
      "fasten exclusive lock -" "=$(printf '%s\n' -- --command -c | LC_ALL=C sort)" \
      "fasten exclusive lock -c " "="
  done
}

test_nothing_completes_after_the_lock_of_status_nor_a_file_after_fd() {
  require_shells
  : >a-file
  local shell
  for shell in "${shells[@]}"; do
    # With --fd there is no LOCK (zsh offers the options that are left).
    expect_completions "$shell" "fasten status lock " "=" "fasten exclusive --fd 9 " "-a-file"
  done
}

run_suite
