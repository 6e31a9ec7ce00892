# bash completion for fasten(1)                            -*- shell-script -*-
#
# fasten [-h|-V] SUBCOMMAND [OPTIONS] LOCK [--] COMMAND [ARG...]
# The options are those of `fasten SUBCOMMAND --help`; the integration suite
# (tests/integration/completion.sh) fails when the two differ.

_fasten_subcommands='exclusive read write status unlock'
_fasten_lock_options='-h --help -w --timeout -n --nonblock -E --conflict-exit-code -c --command
  -o --close -F --no-fork --mode --no-create -v --verbose -q --quiet --fd --ttl --grace --slots --also'
# The options above that take a value, as a space-delimited pattern (--also
# takes two: MODE and a lock).
_fasten_lock_valued=' -w --timeout -E --conflict-exit-code -c --command --mode --fd --ttl --grace --slots --also '
_fasten_status_options='-h --help --json'
_fasten_unlock_options='-h --help --fd -v --verbose'

# The descriptors above 2 that a command started from this shell inherits
# (those `exec 9>>FILE` or `exec {fd}>>FILE` opened): open, not close-on-exec
# and not a terminal, which leaves out bash's own copy of the terminal (255)
# and the directory its glob of /proc/$$/fd reads with (closed by now).
_fasten_descriptors() {
    local fd key flags fds=()
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        [[ $fd == [0-9]* && $fd -gt 2 && $fd -ne 255 && ! -t $fd ]] || continue
        flags=
        while read -r key flags; do
            [[ $key == flags: ]] && break
            flags=
        done 2>/dev/null </proc/$$/fdinfo/$fd
        # O_CLOEXEC is 02000000 in the octal flags of fdinfo.
        [[ $flags == [0-7]* ]] && ((!(8#$flags & 8#2000000))) && fds+=("$fd")
    done
    COMPREPLY=($(compgen -W "${fds[*]}" -- "$cur"))
}

# The value of option $1: descriptor numbers for --fd, a lock mode for
# --also, nothing for the rest (seconds, exit statuses, permissions and
# shell strings are typed, not chosen).
_fasten_value() {
    case $1 in
    --fd) _fasten_descriptors ;;
    --also) COMPREPLY=($(compgen -W 'exclusive read write' -- "$cur")) ;;
    *) COMPREPLY=() ;;
    esac
}

_fasten() {
    local cur prev words cword split
    # -n : keeps an etcd://HOST:PORT/NAME LOCK one word.
    _init_completion -s -n : || return

    local i=1
    while ((i < cword)) && [[ ${words[i]} == -* ]]; do
        ((i++))
    done
    if ((i == cword)); then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W '-h --help -V --version' -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$_fasten_subcommands" -- "$cur"))
        fi
        return
    fi
    local subcommand=${words[i]} options valued=' '
    case $subcommand in
    exclusive | read | write)
        options=$_fasten_lock_options
        valued=$_fasten_lock_valued
        ;;
    status) options=$_fasten_status_options ;;
    unlock)
        options=$_fasten_unlock_options
        valued=' --fd '
        ;;
    *) return ;;
    esac

    if [[ $split == true ]]; then
        _fasten_value "$prev"
        return
    fi

    # Walk the options to LOCK as fasten does: each valued option takes the
    # next word, and in a cluster (-nw 5) the first valued one ends it.
    local word lock= command_string= by_fd=
    for ((i++; i < cword; i++)); do
        word=${words[i]}
        case $word in
        --)
            lock=$((i + 1))
            break
            ;;
        --fd | --fd=*) by_fd=1 ;;&
        -c | --command | --command=*) command_string=1 ;;&
        --also=*) ((i++)) ;;
        --*=*) ;;
        --*)
            [[ $word == --also ]] && ((i++))
            [[ $valued == *" $word "* ]] && ((i++))
            ;;
        -?*)
            local c
            for ((c = 1; c < ${#word}; c++)); do
                [[ ${word:c:1} == c ]] && command_string=1
                if [[ $valued == *" -${word:c:1} "* ]]; then
                    ((c + 1 == ${#word})) && ((i++))
                    break
                fi
            done
            ;;
        *)
            lock=$i
            break
            ;;
        esac
    done

    if [[ ! $lock ]]; then
        # i is past cword when the word under the cursor is an option's value.
        if ((i > cword)); then
            # --also's second value is a lock.
            if [[ ${words[cword - 2]} == --also || $prev == --also=* ]]; then
                _filedir
            else
                _fasten_value "$prev"
            fi
        elif [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$options" -- "$cur"))
        elif [[ $subcommand != unlock && ! $by_fd ]]; then
            _filedir
        fi
        return
    fi
    if ((lock >= cword)); then
        _filedir
        return
    fi
    [[ $subcommand == status || $command_string ]] && return

    # After LOCK: `-- COMMAND...`, `-c STRING`, or COMMAND..., completed as
    # the command's own completion would.
    local start=$((lock + 1))
    if ((start == cword)) && [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '-- -c --command' -- "$cur"))
        return
    fi
    case ${words[start]} in
    --) ((start++)) ;;
    -c | --command) return ;;
    esac
    if ((start <= cword)); then
        # _command_offset counts in COMP_WORDS: make them the words as
        # _init_completion joined them (an etcd URL is one word, not five).
        COMP_WORDS=("${words[@]}")
        COMP_CWORD=$cword
        _command_offset $start
    fi
} &&
    complete -F _fasten fasten

# ex: filetype=sh
