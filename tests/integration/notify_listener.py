#!/usr/bin/env python3
# notify_listener.py - stands in for systemd's end of sd_notify: a datagram socket at PATH whose
# messages are written to OUT, one line each, their "\n"-separated fields joined by " ".
# SPDX-License-Identifier: Apache-2.0
#
# Usage: notify_listener.py PATH OUT [--mode 0666]. Prints "ready" on stdout once bound; stops
# on SIGTERM or SIGINT. The socket is made writable by others (--mode) so a daemon that runs
# as another user can still notify, as with systemd.
import argparse
import os
import signal
import socket
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("out")
    ap.add_argument("--mode", default="0666")
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
                out.write(" ".join(msg.strip("\n").split("\n")) + "\n")
        except KeyboardInterrupt:
            pass
        finally:
            os.unlink(a.path)


if __name__ == "__main__":
    main()
