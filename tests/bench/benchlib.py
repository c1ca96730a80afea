# benchlib.py - what the benchmark reports share: reading the raw result lines and the run's
# description, medians, number formatting, writing the report.
# SPDX-License-Identifier: Apache-2.0
#
# Imported from this directory (python3 puts a script's own directory on sys.path); stdlib only.
import statistics
import sys


def parse(path):
    """The result lines in PATH as dicts of their key=value words (other words are labels).

    A key that comes again in a line keeps its first value: the driver's words come first, and
    the relaybench result line appended to them repeats none with another value."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = {}
            for word in line.split():
                if "=" in word:
                    k, v = word.split("=", 1)
                    fields.setdefault(k, v)
            if fields:
                rows.append(fields)
    return rows


def load(argv):
    """A report's command line, "RESULTS REPORT.md KEY=VALUE...": the result rows and the
    KEY=VALUE description of the run as a dict."""
    return parse(argv[1]), dict(a.split("=", 1) for a in argv[3:])


def med(rows, key, **match):
    """The median of KEY over the rows whose fields equal every MATCH, or None if none has it."""
    vals = [float(r[key]) for r in rows
            if all(r.get(k) == str(v) for k, v in match.items()) and key in r]
    return statistics.median(vals) if vals else None


def fmt(v, digits=0):
    return "—" if v is None else f"{v:,.{digits}f}"


def ratio(a, b):
    return None if a is None or not b else a / b


def write_report(path, lines, final_newline=False):
    """The report's lines into PATH (a newline at the end when asked) and on standard output."""
    text = "\n".join(lines) + ("\n" if final_newline else "")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
