#!/usr/bin/env python3
# notify_subscriber.py - an independent MpsNotification subscriber for notify_soap.sh: Python
# stdlib only (http.server + xml.etree), written from the WSDL's text, not from project code.
# SPDX-License-Identifier: Apache-2.0
#
# Usage: notify_subscriber.py PORT keep|drop [--log FILE] [--tls CERT KEY]
# (--tls: HTTPS with the PEM certificate chain CERT and its key KEY.) Listens on 127.0.0.1:PORT
# (0: a port the kernel picks) and prints "ready PORT" with the port it got once it does.
# Checks each request strictly (POST, text/xml, the SOAPAction, a SOAP 1.1 or 1.2 envelope,
# the elements by namespace URI and in the WSDL's order) and appends one line per notification
# to FILE, in the same format as tests/soap/notify_subscriber.c:
#   state=0 fqdn=F ports=16992,16993 uuid=U mps=ADDR http=8080 socks=8090 wantreply=1 auth=-
# A request that breaks a rule is answered 500 with a SOAP fault and logged as "bad: why".
import argparse
import base64
import ssl
import sys
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NS = "urn:mpsd:MpsNotification:1"
ACTION = NS + "/EventNotificationRequest"
ENVELOPES = ("http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope")
FIELDS = ["State", "DeviceFqdn", "DevicePort", "DeviceUuid", "MpsAddress", "MpsHttpPort",
          "MpsSocksPort", "WantReply"]

args = None
log_lock = threading.Lock()


def log_line(line):
    if args.log:
        with log_lock, open(args.log, "a") as f:
            f.write(line + "\n")


def parse_bool(text):
    if text in ("true", "1"):
        return 1
    if text in ("false", "0"):
        return 0
    raise ValueError("not an xs:boolean: %r" % text)


def parse_event(body):
    """The notification's log line, or ValueError saying what is wrong."""
    root = ET.fromstring(body)
    env_ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    if env_ns not in ENVELOPES or root.tag != "{%s}Envelope" % env_ns:
        raise ValueError("root is %s, not a SOAP Envelope" % root.tag)
    bodies = root.findall("{%s}Body" % env_ns)
    if len(bodies) != 1:
        raise ValueError("%d SOAP Body elements" % len(bodies))
    req = list(bodies[0])
    if len(req) != 1 or req[0].tag != "{%s}EventNotificationRequest" % NS:
        raise ValueError("Body holds %s" % [e.tag for e in req])
    events = list(req[0])
    if len(events) != 1 or events[0].tag != "{%s}MPSEvent" % NS:
        raise ValueError("EventNotificationRequest holds %s" % [e.tag for e in events])
    fields = list(events[0])
    names = []
    for e in fields:
        if not e.tag.startswith("{%s}" % NS):
            raise ValueError("element %s outside %s" % (e.tag, NS))
        names.append(e.tag.split("}")[1])
    # The WSDL's sequence: each field once, DevicePort 0..2 times, in this order.
    order = [n for n in names if n != "DevicePort"]
    if order != [f for f in FIELDS if f != "DevicePort"]:
        raise ValueError("fields %s, not the WSDL's sequence" % names)
    nports = names.count("DevicePort")
    if nports > 2 or (nports and names[2:2 + nports] != ["DevicePort"] * nports):
        raise ValueError("DevicePort misplaced or more than 2: %s" % names)
    val = {}
    ports = []
    for n, e in zip(names, fields):
        text = (e.text or "").strip()
        if n == "DevicePort":
            ports.append(int(text))
        else:
            val[n] = text
    state = int(val["State"])
    if state not in (0, 1):
        raise ValueError("State %d" % state)
    for p in ports + [int(val["MpsHttpPort"]), int(val["MpsSocksPort"])]:
        if not 0 <= p <= 65535:
            raise ValueError("port %d out of range" % p)
    return "state=%d fqdn=%s ports=%s uuid=%s mps=%s http=%d socks=%d wantreply=%d" % (
        state, val["DeviceFqdn"], ",".join(str(p) for p in ports), val["DeviceUuid"],
        val["MpsAddress"], int(val["MpsHttpPort"]), int(val["MpsSocksPort"]),
        parse_bool(val["WantReply"]))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def answer(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def fault(self, why):
        log_line("bad: " + why)
        self.answer(500, '<?xml version="1.0" encoding="UTF-8"?>'
                    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
                    '<s:Fault><faultcode>s:Client</faultcode><faultstring>%s</faultstring>'
                    '</s:Fault></s:Body></s:Envelope>' % why.replace("&", "&amp;")
                    .replace("<", "&lt;"))

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self.fault("chunked request (not expected from mpsd)")
        ctype = self.headers.get("Content-Type", "")
        action = self.headers.get("SOAPAction", "").strip('"')
        if not (ctype.startswith("text/xml") or ctype.startswith("application/soap+xml")):
            return self.fault("Content-Type %r" % ctype)
        if ctype.startswith("text/xml") and action != ACTION:
            return self.fault("SOAPAction %r" % action)
        user = "-"
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
        try:
            line = parse_event(body)
        except (ET.ParseError, ValueError, KeyError) as e:
            return self.fault(str(e))
        log_line("%s auth=%s" % (line, user))
        keep = "false" if args.mode == "drop" else "true"
        self.answer(200, '<?xml version="1.0" encoding="UTF-8"?>\n'
                    '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" '
                    'xmlns:n="%s"><env:Body><n:EventNotificationResponse>'
                    '<n:KeepConnection>%s</n:KeepConnection></n:EventNotificationResponse>'
                    '</env:Body></env:Envelope>\n' % (NS, keep))


def main():
    global args
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("mode", choices=["keep", "drop"])
    ap.add_argument("--log")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.daemon_threads = True
    print("ready %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
