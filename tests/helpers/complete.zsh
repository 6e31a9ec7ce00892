#!/usr/bin/env zsh
# complete.zsh FPATH_DIR LINE...: types each LINE and a Tab into one
# interactive zsh (on a pseudo-terminal, from the zsh/zpty module) whose
# completion system has FPATH_DIR first in $fpath, and prints the matches it
# offers, one a line, then the line "--end-of-matches--" after those of each LINE.
# compadd is wrapped to write each match it adds to a file: the terminal
# output (menus, prompts, escape sequences) is never parsed.
emulate -L zsh
zmodload zsh/zpty || exit 2
local dir=$1 out=${TMPDIR:-/tmp}/complete-zsh.$$
shift
rm -f $out.matches $out.done
cat >$out.rc <<RC
PS1='' RPS1='' PS2=''
fpath=(${(q)dir} \$fpath)
autoload -Uz compinit && compinit -u -D
zstyle ':completion:*' list-prompt ''
zstyle ':completion:*' insert-tab false
compadd() {
  # -O, -A and -D ask for matches back, to filter: they add nothing.
  if (( \${@[(I)-[OAD]]} )); then
    builtin compadd "\$@"
    return
  fi
  local -a added
  builtin compadd -A added "\$@"
  (( \$#added )) && print -rl -- \$added >>${(q)out}.matches
  builtin compadd "\$@"
}
_fasten_test_complete() {
  _main_complete
  : >${(q)out}.done
}
zle -C fasten-test-complete complete-word _fasten_test_complete
bindkey '^I' fasten-test-complete
bindkey '^U' kill-whole-line
RC
zpty fasten_zsh zsh -f -i
zpty -w fasten_zsh "source ${(q)out}.rc"
local line chunk
for line; do
  zpty -n -w fasten_zsh "$line"$'\t'
  integer deadline=$(( SECONDS + 60 ))
  until [[ -e $out.done ]]; do
    # Drain the terminal, so that zsh never blocks on writing to it.
    zpty -r -t fasten_zsh chunk >/dev/null
    if (( SECONDS > deadline )); then
      print -u2 "complete.zsh: no completion for: $line"
      zpty -d fasten_zsh
      exit 2
    fi
    sleep 0.01
  done
  [[ -e $out.matches ]] && sort -u $out.matches
  print -r -- --end-of-matches--
  rm -f $out.matches $out.done
  zpty -n -w fasten_zsh $'\C-u'
done
zpty -d fasten_zsh
rm -f $out.rc
