#!/usr/bin/env python3
"""free-ports.py N: prints N loopback TCP ports that are free now.

They are taken below the kernel's range of ephemeral ports
(/proc/sys/net/ipv4/ip_local_port_range), from which every outgoing
connection gets its own port: one picked in that range (a bind to port 0)
can be taken by a connection of etcd's, or of a client's, before the server
that is to listen on it binds it, or binds it again after a restart, and that
server then fails to start. Above 10000, clear of the well-known ports; where
the ephemeral range leaves too little room below it, from that range after
all.
"""

import errno
import random
import socket
import sys

LOWEST = 10000


def ephemeral_start():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count):
    top = ephemeral_start()
    socks = []
    try:
        while len(socks) < count:
            s = socket.socket()
            port = random.randrange(LOWEST, top) if top - LOWEST >= 1000 else 0
            try:
                s.bind(("127.0.0.1", port))
            except OSError as error:
                s.close()
                # Taken: try another. Anything else (no loopback, say) would
                # fail at every port, and so loop for ever.
                if error.errno != errno.EADDRINUSE:
                    raise
                continue
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


if __name__ == "__main__":
    print(*free_ports(int(sys.argv[1])))
