#!/usr/bin/env python3
# test_mpsd_stats.py - contrib/mpsd-stats's pure parts: line format, the kind of each line,
# suppressed lines, the time window, rotated files, and the report's exact text.
# Run: python3 tests/unit/test_mpsd_stats.py [path/to/mpsd-stats]
# SPDX-License-Identifier: Apache-2.0
import importlib.machinery
import importlib.util
import os
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(HERE, "../../contrib/mpsd-stats")
loader = importlib.machinery.SourceFileLoader("mpsd_stats", TOOL)
spec = importlib.util.spec_from_loader("mpsd_stats", loader)
ms = importlib.util.module_from_spec(spec)
loader.exec_module(ms)

UUID = "48534188-5245-4188-5348-455288415348"
IDENT = "[uuid %s, fqdn dev1.example.com, peer 127.0.0.1:40000]" % UUID


def line(t, level, text):
    """A line as core/log.c writes it at time t."""
    lt = time.localtime(t)
    return "[%s %s %d %d %02d:%02d:%02d.%06d] [LM %s] %s\n" % (
        "Mon Tue Wed Thu Fri Sat Sun".split()[lt.tm_wday],
        "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()[lt.tm_mon - 1],
        lt.tm_mday, lt.tm_year, lt.tm_hour, lt.tm_min, lt.tm_sec, int(t % 1 * 1e6), level, text)


# One line of each kind as mpsd writes it, and the field it counts in.
MPSD_LINES = [
    ("Intel remote client %s is now connected. %s" % (UUID, IDENT), "devices_opened"),
    ("[dev1.example.com] Intel remote client has disconnected (DISCONNECT 11 BY_APPLICATION "
     "from the device) " + IDENT, "devices_closed"),
    ("[dev1.example.com] Intel remote client has disconnected unexpectedly (connection closed "
     "without DISCONNECT) " + IDENT, "connection_errors"),
    ("Intel remote client unknown (127.0.0.3:5555) connection error before logging in: "
     "DISCONNECT 2 PROTOCOL_ERROR from mpsd", "connection_errors"),
    ("Channel between Intel remote client dev1.example.com and management console "
     "127.0.0.1:41000 opened. Channel ID [0:7] " + IDENT, "consoles_opened"),
    ("[127.0.0.1] management console has shutdown. Channel between Intel remote client "
     "dev1.example.com and management console 127.0.0.1:41000 closed. Channel ID [0:7] " + IDENT,
     "consoles_closed"),
    ("Intel remote client %s (no FQDN yet, 127.0.0.1:40001) authentication FAILED for user "
     "'amtuser': denied" % UUID, "amt_auth_failures"),
    ('auth[console]: user "admin" from 127.0.0.1:41234 denied: wrong password',
     "console_auth_failures"),
    ("Intel remote client %s (dev1.example.com, 127.0.0.1:40000) sent a 42-byte UDP alert for "
     "192.0.2.1:162: dropped (not an authorized server)" % UUID, "udp_blocked"),
    ("Intel remote client %s (dev1.example.com, 127.0.0.1:40000) asked for a direct-tcpip "
     "channel to 192.0.2.1:80: refused (not an authorized server)" % UUID, "tcp_blocked"),
    ("Intel remote client %s (dev1.example.com, 127.0.0.1:40000) sent a 42-byte UDP alert for "
     "nosuch.invalid:162: dropped: cannot resolve: unknown node" % UUID, "connection_errors"),
    ("Intel remote client %s (dev1.example.com, 127.0.0.1:40000) asked for a direct-tcpip "
     "channel to 192.0.2.1:80: connect failed: connection refused" % UUID, "connection_errors"),
    # Not counted: the descriptive lines around the events.
    ("Intel remote client %s (dev1.example.com, 127.0.0.1:40000) disconnected by mpsd: 2 "
     "PROTOCOL_ERROR: bad" % UUID, None),
    ("User authentication request Username: amtuser (Intel remote client %s, 127.0.0.1:4)"
     % UUID, None),
    ("authentication SUCCESS (Intel remote client %s, 127.0.0.1:4)" % UUID, None),
    ('auth[AMT]: user "amtuser" from 127.0.0.1:4 denied: wrong password', None),
    ("Intel remote client dev1.example.com started port forwarding to address "
     "dev1.example.com:16992 " + IDENT, None),
]

# The reference's own lines (seed 003, section 10.3, rejoined): mpsd-stats reads them too.
REFERENCE_LINES = [
    ("Intel remote client 48534188-5245-4188-5348-455288415348 is now connected.",
     "devices_opened"),
    ("Channel between Intel remote client cant.rclient.intel.com and management console "
     "212.212.212.12 opened. Channel ID [0:12]", "consoles_opened"),
    ("[212.212.212.12] management console has shutdown", "consoles_closed"),
    ("[cant.rclient.intel.com] Intel remote client has disconnected", "devices_closed"),
    ("Intel (R) Management Presence Server has started", None),
]


class Lines(unittest.TestCase):
    def test_parse_seed_line(self):
        p = ms.parse_line("[Wed Jul 2 2008 12:21:34.203000] [LM INFO] Intel (R) Management "
                          "Presence Server has started\n")
        self.assertIsNotNone(p)
        t, level, text = p
        self.assertEqual(level, "INFO")
        self.assertEqual(text, "Intel (R) Management Presence Server has started")
        lt = time.localtime(t)
        self.assertEqual((lt.tm_year, lt.tm_mon, lt.tm_mday, lt.tm_hour, lt.tm_min, lt.tm_sec),
                         (2008, 7, 2, 12, 21, 34))
        self.assertAlmostEqual(t % 1, 0.203, places=3)

    def test_parse_rejects_other_lines(self):
        for bad in ("Intel(R) Management Presence Server", "", "[LM INFO] x",
                    "[Wed Foo 2 2008 12:21:34.203000] [LM INFO] x",
                    "[Wed Jul 2 2008 12:21:34.203000] [LM NOTICE] x"):
            self.assertIsNone(ms.parse_line(bad), bad)

    def test_kinds(self):
        for text, field in MPSD_LINES + REFERENCE_LINES:
            self.assertEqual(ms.classify(text), field, text)

    def test_suppressed_lines_count(self):
        counts = {f: 0 for f, _ in ms.FIELDS}
        text = MPSD_LINES[8][0]
        ms.count_line(counts, "INFO", text + " (3 similar lines suppressed)")
        ms.count_line(counts, "INFO", "5 similar lines suppressed in the last 60 s, such as: "
                      + text)
        ms.count_line(counts, "INFO", "1 similar line suppressed in the last 2 s, such as: "
                      + MPSD_LINES[3][0])
        self.assertEqual(counts["udp_blocked"], 9)
        self.assertEqual(counts["connection_errors"], 1)

    def test_general_errors(self):
        counts = {f: 0 for f, _ in ms.FIELDS}
        ms.count_line(counts, "ERROR", "[socks5] out of memory")
        ms.count_line(counts, "ERROR", "[socks5] out of memory (2 similar lines suppressed)")
        ms.count_line(counts, "WARNING", "not an error")
        self.assertEqual(counts["general_errors"], 4)


class Report(unittest.TestCase):
    def test_window_rotation_and_text(self):
        now = time.time()
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "MPS.log")
            with open(log + ".1", "w") as f:  # rotated: older lines, one outside the window
                f.write("Intel(R) Management Presence Server\n")  # a Heading line
                f.write(line(now - 7200, "INFO", MPSD_LINES[0][0]))
                f.write(line(now - 3000, "INFO", MPSD_LINES[0][0]))
            with open(log, "w") as f:
                for text, _ in MPSD_LINES:
                    f.write(line(now - 60, "INFO", text))
                f.write(line(now - 30, "ERROR", "[admin_soap] cannot open the key file"))
            with open(log + ".old", "w") as f:  # not a rotated copy: never read
                f.write(line(now - 10, "INFO", MPSD_LINES[0][0]))
            files = ms.log_files(log)
            self.assertEqual(sorted(files), [log, log + ".1"])
            lines = [l for p in files for l in ms.read_lines(p)]
            counts, first = ms.compute(lines, now, 3600)
            self.assertAlmostEqual(first, now - 3000, delta=1)
            want = {f: 0 for f, _ in ms.FIELDS}
            for _, field in MPSD_LINES:
                if field:
                    want[field] += 1
            want["devices_opened"] += 1  # the rotated file's line within the hour
            want["general_errors"] = 1
            self.assertEqual(counts, want)
            text = ms.format_report(counts, first, now, 3600)
            rows = text.splitlines()
            self.assertTrue(rows[0].startswith("Report period: 0 hours 50 minutes ("), rows[0])
            self.assertEqual(rows[1:], [
                "Number of Intel clients connections opened: 2",
                "Number of Intel clients connections closed: 1",
                "Number of Intel management-console opened: 1",
                "Number of Intel management-console closed: 1",
                "Number of Intel AMT authentication failure: 1",
                "Number of Socks authentication failure: 1",
                "Number of non-filtered (blocked) UDP connections: 1",
                "Number of non-filtered (blocked) TCP connections: 1",
                "Number of connection errors: 4",
                "Number of general errors: 1",
            ])
            # The whole span when less was logged than asked for; nothing before the window.
            counts, first = ms.compute(lines, now, 10 * 3600)
            self.assertEqual(counts["devices_opened"], 3)
            self.assertIn("Report period: 2 hours 0 minutes",
                          ms.format_report(counts, first, now, 10 * 3600))
            counts, first = ms.compute(lines, now, 10)
            self.assertEqual(sum(counts.values()), 0)
            self.assertIsNone(first)
            self.assertIn("Report period: 0 hours 0 minutes",
                          ms.format_report(counts, first, now, 10))

    def test_usage_errors(self):
        self.assertEqual(ms.main(["mpsd-stats"]), 2)
        self.assertEqual(ms.main(["mpsd-stats", "/nonexistent/MPS.log", "1", "x"]), 2)
        self.assertEqual(ms.main(["mpsd-stats", "/nonexistent/MPS.log", "-1", "0"]), 2)
        self.assertEqual(ms.main(["mpsd-stats", "/nonexistent/MPS.log", "1", "0"]), 1)


if __name__ == "__main__":
    unittest.main(verbosity=1)
