# fish completion for fasten(1)
#
# fasten [-h|-V] SUBCOMMAND [OPTIONS] LOCK [--] COMMAND [ARG...]
# The options are those of `fasten SUBCOMMAND --help`; the integration suite
# (tests/integration/completion.sh) fails when the two differ.

# Reads the command line up to the cursor as fasten does, and prints the
# subcommand, then where the cursor stands: "subcommand"; "lock" (LOCK's
# place, its options, and their values); "options" (no LOCK: unlock, or
# --fd); "command" (after LOCK), followed by the command's words; "none"
# (status's LOCK is the last word, and -c STRING takes no completion).
function __fasten_walk
    set -l words (commandline -opc)
    set -e words[1]
    # fasten's own options, then the subcommand.
    while set -q words[1]; and string match -q -- '-*' $words[1]
        set -e words[1]
    end
    if not set -q words[1]
        printf '%s\n' '' subcommand
        return
    end
    set -l subcommand $words[1]
    set -e words[1]
    set -l valued -w --timeout -E --conflict-exit-code -c --command --mode --fd --ttl --grace --slots
    test $subcommand = unlock; and set valued --fd
    set -l by_fd
    set -l command_string
    # Skip the options, and the values of those that take one, to LOCK. In
    # a cluster (-nw 5) the first option that takes a value ends it.
    while set -q words[1]
        switch $words[1]
            case --
                set -e words[1]
                break
            case '--fd' '--fd=*'
                set by_fd 1
                test $words[1] = --fd; and set -e words[1]
            case '--command' '--command=*'
                set command_string 1
                test $words[1] = --command; and set -e words[1]
            case --also
                # Two values: MODE, and a lock (the one left for below).
                set -e words[1]
                set -q words[2]; and set -e words[1]
            case '--also=*'
                set -q words[2]; and set -e words[1]
            case '--*=*'
            case '--*'
                contains -- $words[1] $valued; and set -e words[1]
            case '-?*'
                for c in (string sub -s 2 -- $words[1] | string split '')
                    test $c = c; and set command_string 1
                    if contains -- -$c $valued
                        string match -q -- "*$c" $words[1]; and set -e words[1]
                        break
                    end
                end
            case '*'
                break
        end
        set -e words[1]
    end
    printf '%s\n' $subcommand
    if test $subcommand = unlock; or set -q by_fd[1]
        echo options
    else if not set -q words[1]
        echo lock
    else if test $subcommand = status; or set -q command_string[1]
        echo none
    else
        # words[1] is LOCK.
        set -e words[1]
        if contains -- "$words[1]" -c --command
            echo none
        else
            test "$words[1]" = --; and set -e words[1]
            echo command
            set -q words[1]; and printf '%s\n' $words
        end
    end
end

# __fasten_at STATE [SUBCOMMAND...]: whether the cursor stands at STATE, in
# one of the SUBCOMMANDs if any are named.
function __fasten_at
    set -l walk (__fasten_walk)
    test "$walk[2]" = $argv[1]; or return 1
    set -q argv[2]; or return 0
    contains -- "$walk[1]" $argv[2..-1]
end

# The descriptors above 2 that a command started from this shell inherits
# (those it inherited itself, or `exec 9>FILE` opened): open, not
# close-on-exec and not a terminal, which leaves out fish's own (its
# directory, its event descriptors, the pipes of this very substitution).
function __fasten_descriptors
    for fd in (path basename /proc/$fish_pid/fd/*)
        test $fd -gt 2; or continue
        isatty $fd; and continue
        # The directory that the glob above read with is closed by now, and
        # a redirection from a missing file is a warning on the terminal
        # that 2>/dev/null does not silence.
        test -r /proc/$fish_pid/fdinfo/$fd; or continue
        set -l flags (string replace -rf '^flags:\s*' '' </proc/$fish_pid/fdinfo/$fd 2>/dev/null)
        or continue
        # O_CLOEXEC is 02000000 in the octal flags of fdinfo: its digit
        # is the seventh from the right, and holds 2.
        contains -- (string sub -s -7 -l 1 -- 000000$flags) 2 3 6 7; and continue
        echo $fd
    end
end

# After LOCK: `-- COMMAND...`, `-c STRING`, or COMMAND..., completed as the
# command's own completion would.
function __fasten_complete_command
    set -l walk (__fasten_walk)
    set -l current (commandline -ct)
    if not set -q walk[3]; and string match -q -- '-*' $current
        printf '%s\n' -- -c --command
        return
    end
    __fish_complete_subcommand --commandline $walk[3..-1] $current
end

complete -c fasten -f
complete -c fasten -n '__fasten_at subcommand' -s h -l help -d 'print help and exit'
complete -c fasten -n '__fasten_at subcommand' -s V -l version -d 'print the version and exit'
complete -c fasten -n '__fasten_at subcommand' -a exclusive -d 'hold an exclusive lock (a mutex) while COMMAND runs'
complete -c fasten -n '__fasten_at subcommand' -a read -d 'hold a shared lock, together with other readers, while COMMAND runs'
complete -c fasten -n '__fasten_at subcommand' -a write -d 'hold the lock against readers and writers while COMMAND runs'
complete -c fasten -n '__fasten_at subcommand' -a unlock -d 'unlock the inherited descriptor N'
complete -c fasten -n '__fasten_at subcommand' -a status -d 'say whether LOCK is free or held, by whom, and how many wait'

# LOCK: a file (or an etcd:// URL, typed).
complete -c fasten -n '__fasten_at lock exclusive read write status' -F

set -l lock '__fasten_at lock exclusive read write; or __fasten_at options exclusive read write'
complete -c fasten -n $lock -s h -l help -d 'print help and exit'
complete -c fasten -n $lock -s w -l timeout -x -d 'give up after SECONDS (decimal)'
complete -c fasten -n $lock -s n -l nonblock -d 'same as --timeout 0'
complete -c fasten -n $lock -s E -l conflict-exit-code -x -d 'exit status (0-255) when the lock was not acquired in time'
complete -c fasten -n $lock -s c -l command -x -d 'run STRING with /bin/sh -c'
complete -c fasten -n $lock -s o -l close -d "do not pass the lock's descriptor to COMMAND"
complete -c fasten -n $lock -s F -l no-fork -d 'exec COMMAND in place'
complete -c fasten -n $lock -l mode -x -d 'permissions for a lock file that fasten creates (octal)'
complete -c fasten -n $lock -l no-create -d 'fail if LOCK does not exist'
complete -c fasten -n $lock -s v -l verbose -d 'say on stderr what it waits for and when it got the lock'
complete -c fasten -n $lock -s q -l quiet -d 'no waiting line on a terminal'
complete -c fasten -n $lock -l fd -x -a '(__fasten_descriptors)' -d 'lock the inherited descriptor N instead of LOCK'
complete -c fasten -n $lock -l ttl -x -d 'etcd locks: the lease time to live in seconds'
complete -c fasten -n $lock -l grace -x -d 'etcd locks: seconds between SIGTERM and SIGKILL when the lock is lost'
complete -c fasten -n $lock -l slots -x -d 'a counting semaphore: up to N commands hold LOCK at once'
complete -c fasten -n $lock -l also -x -a 'exclusive read write' -d 'hold another lock too, in MODE: --also MODE LOCK2'

complete -c fasten -n '__fasten_at lock status' -s h -l help -d 'print help and exit'
complete -c fasten -n '__fasten_at lock status' -l json -d 'print the same as one JSON object'

complete -c fasten -n '__fasten_at options unlock' -s h -l help -d 'print help and exit'
complete -c fasten -n '__fasten_at options unlock' -l fd -x -a '(__fasten_descriptors)' -d 'the descriptor to unlock'
complete -c fasten -n '__fasten_at options unlock' -s v -l verbose -d 'say on stderr what was unlocked'

complete -c fasten -n '__fasten_at command' -x -a '(__fasten_complete_command)'
