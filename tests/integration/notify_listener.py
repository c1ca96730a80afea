#!/usr/bin/env python3
# notify_listener.py - stands in for systemd's end of sd_notify: a datagram socket at PATH whose
# messages are written to OUT, one line each, their "\n"-separated fields joined by " ".
# SPDX-License-Identifier: Apache-2.0
#
# Usage: notify_listener.py PATH OUT [--mode 0666] [--probe HOST:PORT]. Prints "ready" on stdout
# once bound; stops on SIGTERM or SIGINT. The socket is made writable by others (--mode) so a
# daemon that runs as another user can still notify, as with systemd. With --probe, each
# READY=1 is followed at once by a TCP connect to HOST:PORT, logged as "probe HOST:PORT ok" or
# "probe HOST:PORT refused: ...": READY must mean the listeners accept.
import argparse
import os
import signal
import socket
import sys


def probe(target):
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return "probe %s ok" % target
    except OSError as e:
        return "probe %s refused: %s" % (target, e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("out")
    ap.add_argument("--mode", default="0666")
    ap.add_argument("--probe")
    a = ap.parse_args()
    if os.path.exists(a.path):
        os.unlink(a.path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(a.path)
    os.chmod(a.path, int(a.mode, 8))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(a.out, "a", buffering=1) as out:
        print("ready", flush=True)
        try:
            while True:
                msg = s.recv(65536).decode("utf-8", "replace")
                fields = msg.strip("\n").split("\n")
                out.write(" ".join(fields) + "\n")
                if a.probe and "READY=1" in fields:
                    out.write(probe(a.probe) + "\n")
        except KeyboardInterrupt:
            pass
        finally:
            os.unlink(a.path)


if __name__ == "__main__":
    main()
