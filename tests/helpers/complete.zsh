#!/usr/bin/env zsh
# complete.zsh FPATH_DIR LINE: types LINE and a Tab into an interactive zsh
# (on a pseudo-terminal, from the zsh/zpty module) whose completion system
# has FPATH_DIR first in $fpath, and prints the matches it offers, one a line.
# compadd is wrapped to write each match it adds to a file: the terminal
# output (menus, prompts, escape sequences) is never parsed.
emulate -L zsh
zmodload zsh/zpty || exit 2
local dir=$1 line=$2 out=${TMPDIR:-/tmp}/complete-zsh.$$
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
_fasten_test_done() { : >${(q)out}.done }
comppostfuncs=(_fasten_test_done)
bindkey '^I' complete-word
RC
zpty fasten_zsh zsh -f -i
zpty -w fasten_zsh "source ${(q)out}.rc"
zpty -n -w fasten_zsh "$line"$'\t'
local chunk
integer deadline=$(( SECONDS + 20 ))
until [[ -e $out.done ]]; do
  # Drain the terminal, so that zsh never blocks on writing to it.
  zpty -r -t fasten_zsh chunk >/dev/null
  (( SECONDS < deadline )) || { print -u2 "complete.zsh: no completion for: $line"; zpty -d fasten_zsh; exit 2 }
  sleep 0.01
done
zpty -d fasten_zsh
[[ -e $out.matches ]] && sort -u $out.matches
rm -f $out.rc $out.matches $out.done
