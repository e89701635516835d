#!/usr/bin/python3
"""A TCP proxy that can blackhole its connections, for the fault specs (tests/spec/faults).

    blackhole_proxy.py TARGET_HOST TARGET_PORT [LISTEN_PORT]

Listens on 127.0.0.1:LISTEN_PORT (default 0: a free port) and forwards every connection to
TARGET_HOST:TARGET_PORT. Prints "listening PORT" on stdout once it accepts connections, and one
line per control signal once that signal has taken effect:

    SIGUSR1  blackhole: stop forwarding in both directions on every connection, nothing closed
             (no FIN, no RST: the peers see silence, as behind a dead link). Connections
             accepted meanwhile are held the same way, not yet connected to the target.
             Prints "blackhole N" (N: the connections held).
    SIGUSR2  restore: forward again on every connection, the held ones included; what the peers
             sent meanwhile (kept in the kernel's buffers, never read) is delivered then.
             Prints "restore N".
    SIGHUP   heal for new connections only: connections accepted from now on (and the ones held
             without a target yet) are forwarded; those blackholed before stay silent for good,
             as after a firewall or NAT lost their state. Prints "heal N" (N: those left silent).
    SIGTERM  close everything and exit.

Python 3 standard library only; one thread, one select loop, woken by signals through a pipe.
"""
import errno
import os
import select
import signal
import socket
import sys

CHUNK = 65536
BUFMAX = 1 << 20  # bytes buffered per direction before reading stops (back pressure)


class Pair:
    """One client connection and its connection to the target."""

    def __init__(self, client):
        self.client = client
        self.target = None
        self.frozen = False  # blackholed: nothing read, nothing written
        self.dead = False  # blackholed for good (after SIGHUP)
        self.up = bytearray()  # client -> target
        self.down = bytearray()  # target -> client
        self.client_eof = False
        self.target_eof = False

    def sockets(self):
        return [s for s in (self.client, self.target) if s is not None]


def main():
    if len(sys.argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    target = (sys.argv[1], int(sys.argv[2]))
    listen_port = int(sys.argv[3]) if len(sys.argv) == 4 else 0

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    pending = []

    def on_signal(signum, _frame):
        pending.append(signum)

    for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(s, on_signal)

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", listen_port))
    lsock.listen(128)
    lsock.setblocking(False)
    print("listening %d" % lsock.getsockname()[1], flush=True)

    pairs = []
    mode = "forward"  # or "blackhole"

    def say(line):
        print(line, flush=True)

    def connect(pair):
        """Connects a pair to the target; closes the client when the target refuses."""
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.connect(target)  # loopback: answered at once
        except OSError:
            t.close()
            close(pair)
            return
        t.setblocking(False)
        t.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair.target = t

    def close(pair):
        for s in pair.sockets():
            try:
                s.close()
            except OSError:
                pass
        pair.client = pair.target = None
        if pair in pairs:
            pairs.remove(pair)

    def handle_signals():
        nonlocal mode
        while pending:
            sig = pending.pop(0)
            if sig == signal.SIGUSR1:
                mode = "blackhole"
                for p in pairs:
                    p.frozen = True
                say("blackhole %d" % len(pairs))
            elif sig == signal.SIGUSR2:
                mode = "forward"
                for p in list(pairs):
                    p.frozen = p.dead = False
                    if p.target is None:
                        connect(p)
                say("restore %d" % len(pairs))
            elif sig == signal.SIGHUP:
                mode = "forward"
                silent = 0
                for p in list(pairs):
                    if p.target is None:
                        p.frozen = False
                        connect(p)
                    elif p.frozen:
                        p.dead = True
                        silent += 1
                say("heal %d" % silent)
            else:
                for p in list(pairs):
                    close(p)
                lsock.close()
                return False
        return True

    while True:
        rlist, wlist = [lsock, wake_r], []
        for p in pairs:
            if p.frozen or p.dead or p.target is None:
                continue
            if not p.client_eof and len(p.up) < BUFMAX:
                rlist.append(p.client)
            if not p.target_eof and len(p.down) < BUFMAX:
                rlist.append(p.target)
            if p.up:
                wlist.append(p.target)
            if p.down:
                wlist.append(p.client)
        try:
            readable, writable, _ = select.select(rlist, wlist, [])
        except InterruptedError:
            readable, writable = [], []
        if wake_r in readable:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        if pending and not handle_signals():
            return 0
        if lsock in readable:
            try:
                c, _ = lsock.accept()
            except OSError:
                c = None
            if c is not None:
                c.setblocking(False)
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                p = Pair(c)
                pairs.append(p)
                if mode == "blackhole":
                    p.frozen = True
                else:
                    connect(p)
        by_sock = {}
        for p in pairs:
            for s in p.sockets():
                by_sock[s] = p
        for s in readable:
            p = by_sock.get(s)
            if p is None or p.frozen or p.dead:
                continue
            try:
                data = s.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                close(p)
                continue
            if s is p.client:
                if data:
                    p.up += data
                else:
                    p.client_eof = True
            else:
                if data:
                    p.down += data
                else:
                    p.target_eof = True
        for s in writable:
            p = by_sock.get(s)
            if p is None or p.client is None or p.frozen or p.dead:
                continue
            buf = p.up if s is p.target else p.down
            try:
                n = s.send(buf)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                close(p)
                continue
            del buf[:n]
        # a side that ended: pass the end on once what it sent before has been delivered
        for p in list(pairs):
            if p.frozen or p.dead or p.target is None:
                continue
            if (p.client_eof and not p.up) or (p.target_eof and not p.down):
                close(p)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OSError as e:
        if e.errno == errno.EPIPE:
            sys.exit(0)
        raise
