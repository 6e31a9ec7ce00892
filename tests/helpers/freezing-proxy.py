#!/usr/bin/env python3
"""A TCP proxy on loopback that forwards to TARGET until told to freeze.

    freezing-proxy.py TARGET_HOST:PORT DIR [--freeze-at-second-request]

It listens on a port of 127.0.0.1 that the kernel picks and writes that port
to DIR/port once it accepts connections (the readiness signal). SIGUSR1
freezes it, for good: from then on it moves no byte in either direction, yet
keeps every connection open, and it accepts new connections but never reads
from them nor answers. A peer behind it looks alive to TCP and silent to
everyone else, as a host cut off by a partition that drops packets. Once
frozen, it writes DIR/frozen. SIGTERM ends it.

With --freeze-at-second-request it freezes by itself as soon as a client
sends anything after the first answer went back (on any connection): the
first request gets through, the next one does not.
"""

import os
import selectors
import signal
import socket
import sys
import threading

frozen = threading.Event()
answered = threading.Event()
freeze_at_second_request = False
directory = "."
# Every socket ever opened, so that none is closed by garbage collection.
kept = []


def write_file(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def freeze():
    if not frozen.is_set():
        frozen.set()
        write_file(os.path.join(directory, "frozen"), "")


def pump(client, target_address):
    try:
        upstream = socket.create_connection(target_address)
    except OSError:
        client.close()
        return
    kept.append(upstream)
    peers = {client: upstream, upstream: client}
    selector = selectors.DefaultSelector()
    for sock in peers:
        selector.register(sock, selectors.EVENT_READ)
    while not frozen.is_set():
        for key, _ in selector.select(timeout=0.05):
            if frozen.is_set():
                break
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            if not data:
                # One side closed: close both, as a plain proxy would.
                for sock in peers:
                    selector.unregister(sock)
                    sock.close()
                return
            if key.fileobj is client and freeze_at_second_request and answered.is_set():
                freeze()
                break
            peers[key.fileobj].sendall(data)
            if key.fileobj is upstream:
                answered.set()
    # Frozen: keep both sockets open and idle for good.


def main():
    global directory, freeze_at_second_request
    if len(sys.argv) not in (3, 4) or sys.argv[3:] not in ([], ["--freeze-at-second-request"]):
        sys.exit("usage: freezing-proxy.py TARGET_HOST:PORT DIR [--freeze-at-second-request]")
    host, _, port = sys.argv[1].rpartition(":")
    target_address = (host, int(port))
    directory = sys.argv[2]
    freeze_at_second_request = len(sys.argv) == 4

    signal.signal(signal.SIGUSR1, lambda signum, frame: freeze())
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    write_file(os.path.join(directory, "port"), str(listener.getsockname()[1]))
    while True:
        client, _ = listener.accept()
        kept.append(client)
        if frozen.is_set():
            continue  # accepted, never read, never answered
        threading.Thread(target=pump, args=(client, target_address), daemon=True).start()


if __name__ == "__main__":
    main()
