#!/usr/bin/env python3
# admin_client.py - an independent client of mpsd's SOAP management API (MpsAdmin): Python's
# standard library only, hand-written SOAP 1.1 envelopes, answers parsed by namespace URI.
# SPDX-License-Identifier: Apache-2.0
#
# Usage: admin_client.py URL list|get NAME|disconnect NAME|disconnect-session N|stats
#            [--basic USER:PASS]
# Prints what tests/soap/admin_client prints (one line per device, then count=N; Name=value
# for stats; connected=/disconnected=). Exit status: 0 answered, 1 SOAP fault ("fault: ..."),
# 2 transport error or another HTTP status (printed as "http STATUS").
import base64
import calendar
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

NS = "urn:mpsd:MpsAdmin:1"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def q(name):
    return "{%s}%s" % (NS, name)


def call(url, op, body_xml, basic):
    envelope = ('<?xml version="1.0" encoding="UTF-8"?>'
                '<soap:Envelope xmlns:soap="%s"><soap:Body>%s</soap:Body></soap:Envelope>'
                % (SOAP_ENV, body_xml))
    req = urllib.request.Request(url, data=envelope.encode("utf-8"), method="POST")
    req.add_header("Content-Type", "text/xml; charset=utf-8")
    req.add_header("SOAPAction", '"%s/%s"' % (NS, op))
    if basic:
        req.add_header("Authorization",
                       "Basic " + base64.b64encode(basic.encode("utf-8")).decode("ascii"))
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            data = resp.read()
    except urllib.error.HTTPError as e:
        data = e.read()
        if e.code != 500 or b"Fault" not in data:
            print("http %d" % e.code)
            sys.exit(2)
    except (urllib.error.URLError, OSError) as e:
        print("transport error: %s" % e, file=sys.stderr)
        sys.exit(2)
    root = ET.fromstring(data)
    body = root.find("{%s}Body" % SOAP_ENV)
    if body is None:
        print("no SOAP Body in the answer", file=sys.stderr)
        sys.exit(2)
    fault = body.find("{%s}Fault" % SOAP_ENV)
    if fault is not None:
        print("fault: %s" % (fault.findtext("faultstring") or "(no faultstring)"))
        sys.exit(1)
    answer = body.find(q(op + "Response"))
    if answer is None:
        print("no %sResponse in the answer" % op, file=sys.stderr)
        sys.exit(2)
    return answer


def epoch(text):
    """xs:dateTime in UTC (what mpsd sends: 2026-01-02T03:04:05Z) -> seconds."""
    if text is None:
        return "-"
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1]
    text = text.split(".")[0]
    return str(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S")))


def device_line(d):
    ports = [p.text for p in d.findall(q("Port"))]
    line = "fqdn=%s uuid=%s ports=%s peer=%s connected=%s lastseen=%s keepalive=%s " \
           "auth=%s user=%s session=%s" % (
               d.findtext(q("Fqdn"), ""), d.findtext(q("Uuid"), ""),
               ",".join(ports) if ports else "-", d.findtext(q("PeerAddress"), ""),
               epoch(d.findtext(q("ConnectedAt"))), epoch(d.findtext(q("LastSeen"))),
               epoch(d.findtext(q("LastKeepalive"))), d.findtext(q("AuthMethod"), ""),
               d.findtext(q("User"), "-"), d.findtext(q("Session"), ""))
    identity = d.findtext(q("Identity"))
    if identity is not None:
        line += ' identity="%s"' % identity
    return line


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main():
    args = sys.argv[1:]
    basic = None
    if "--basic" in args:
        i = args.index("--basic")
        basic = args[i + 1]
        del args[i:i + 2]
    if len(args) < 2:
        print(__doc__ or "usage: admin_client.py URL OP [ARG]", file=sys.stderr)
        sys.exit(2)
    url, op = args[0], args[1]
    arg = args[2] if len(args) > 2 else None
    if op == "list":
        r = call(url, "GetConnectedDevices",
                 '<GetConnectedDevicesRequest xmlns="%s"/>' % NS, basic)
        for d in r.findall(q("Device")):
            print(device_line(d))
        print("count=%s" % r.findtext(q("Count")))
    elif op == "get" and arg:
        r = call(url, "GetDevice", '<m:GetDeviceRequest xmlns:m="%s"><m:Device>%s</m:Device>'
                 '</m:GetDeviceRequest>' % (NS, esc(arg)), basic)
        print("connected=%s" % r.findtext(q("Connected")))
        d = r.find(q("Device"))
        if d is not None:
            print(device_line(d))
    elif op in ("disconnect", "disconnect-session") and arg:
        field = "Device" if op == "disconnect" else "Session"
        r = call(url, "DisconnectDevice", '<m:DisconnectDeviceRequest xmlns:m="%s"><m:%s>%s</m:%s>'
                 '</m:DisconnectDeviceRequest>' % (NS, field, esc(arg), field), basic)
        print("disconnected=%s" % r.findtext(q("Disconnected")))
    elif op == "stats":
        r = call(url, "GetStatistics", '<GetStatisticsRequest xmlns="%s"/>' % NS, basic)
        for child in r:
            name = child.tag.split("}")[1]
            value = epoch(child.text) if name == "StartedAt" else child.text
            print("%s=%s" % (name, value))
    else:
        print("usage: admin_client.py URL list|get NAME|disconnect NAME|"
              "disconnect-session N|stats [--basic USER:PASS]", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
