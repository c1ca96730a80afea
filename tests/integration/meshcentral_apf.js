// meshcentral_apf.js - run MeshCentral's device-side APF client (agents/modules_meshcore/
// amt-apfclient.js of the meshcentral npm package, unmodified) against mpsd, relaying to a
// local HTTP responder that plays the AMT web server (16992).
// SPDX-License-Identifier: Apache-2.0
//
// Usage: node meshcentral_apf.js MESHCENTRAL_DIR URL UUID USER PASSWORD NAME OUTDIR
//   URL: tcp://127.0.0.1:PORT (plain) or tls://127.0.0.1:PORT
//
// The module is written for MeshAgent's Duktape runtime, whose require('http') opens the
// agent's connection to the MPS (request() with an .upgrade callback, getting a duplex "ws"
// whose write() takes binary strings). Only that environment is provided here:
//   http.parseUri(url)     -> {protocol, host, port}
//   http.request(options)  -> an object whose end() opens a TCP (or TLS, certificate not
//                             checked, as the module asks with rejectUnauthorized = 0)
//                             connection and calls .upgrade(null, ws, null); ws.write()
//                             sends strings as bytes (latin1), as MeshAgent does.
//   net.createConnection   -> Node's, except that the AMT ports the module relays to
//                             (16992/16993 on clientaddress) go to the responder's port:
//                             the test cannot own port 16992.
// Every APF message is built and parsed by the module itself. Its Debug lines (parent.debug)
// go to OUTDIR/client.log; the responder writes OUTDIR/port when listening and appends every
// request it serves to OUTDIR/requests.log.
'use strict';
const fs = require('fs');
const net = require('net');
const tls = require('tls');
const http = require('http');
const path = require('path');

const [mcDir, url, uuid, user, pass, name, outDir] = process.argv.slice(2);
if (!outDir) {
    console.error('usage: node meshcentral_apf.js MESHCENTRAL_DIR URL UUID USER PASSWORD NAME OUTDIR');
    process.exit(2);
}
const modPath = path.join(mcDir, 'agents', 'modules_meshcore', 'amt-apfclient.js');
const clientLog = fs.createWriteStream(path.join(outDir, 'client.log'), { flags: 'a' });
function note(line) { clientLog.write(line + '\n'); }

// The local "AMT": answers every request with what it saw, so the test can tell that the
// console's request crossed mpsd, the APF channel and the client's relay intact.
let amtPort = 0;
const responder = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
        fs.appendFileSync(path.join(outDir, 'requests.log'),
            `${req.method} ${req.url} host=${req.headers.host} body=${body}\n`);
        const reply = `<?xml version="1.0"?><a:Envelope>relayed ${req.method} ${req.url} ` +
            `${body.length} bytes</a:Envelope>`;
        res.writeHead(200, { 'Content-Type': 'application/soap+xml; charset=UTF-8',
            'Content-Length': Buffer.byteLength(reply) });
        res.end(reply);
    });
});

// MeshAgent's http module, as far as amt-apfclient.js uses it.
const agentHttp = {
    parseUri(u) {
        const m = /^(\w+):\/\/([^/:]+):(\d+)/.exec(u);
        if (!m) throw new Error('bad URL ' + u);
        return { protocol: m[1] + ':', host: m[2], port: Number(m[3]) };
    },
    request(options) {
        const req = {
            end() {
                const o = { host: options.host, port: options.port };
                const sock = options.protocol === 'tls:'
                    ? tls.connect(Object.assign(o, { rejectUnauthorized: false }))
                    : net.connect(o);
                const ws = {
                    write(d) { return sock.write(typeof d === 'string' ? Buffer.from(d, 'latin1') : d); },
                    end() { sock.end(); },
                    on(ev, cb) { sock.on(ev, cb); return ws; },
                };
                sock.on('data', (d) => { note('DRIVER: received ' + d.length + ' bytes: ' + d.toString('hex').slice(0, 64)); });
                sock.on('close', () => { note('DRIVER: connection closed'); });
                sock.once(options.protocol === 'tls:' ? 'secureConnect' : 'connect', () => {
                    note('DRIVER: connected to ' + url);
                    req.upgrade(null, ws, null);
                });
                sock.on('error', (e) => { note('DRIVER: socket error ' + e.message); });
            },
        };
        return req;
    },
};
const agentNet = Object.assign({}, net, {
    createConnection(opts, cb) {
        const o = Object.assign({}, opts);
        if (o.port === 16992 || o.port === 16993) o.port = amtPort;
        return net.createConnection(o, cb);
    },
});

function loadModule() {
    const src = fs.readFileSync(modPath, 'utf8');
    const mod = { exports: {} };
    const shimRequire = (n) => (n === 'http' ? agentHttp : n === 'net' ? agentNet : require(n));
    new Function('require', 'module', 'exports', src)(shimRequire, mod, mod.exports);
    return mod.exports;
}

responder.listen(0, '127.0.0.1', () => {
    amtPort = responder.address().port;
    fs.writeFileSync(path.join(outDir, 'port'), String(amtPort) + '\n');
    const CreateAPFClient = loadModule();
    // console.log is where the module's Debug() writes with parent.debug set.
    console.log = (...a) => note(a.join(' '));
    const client = CreateAPFClient({ debug: true }, {
        mpsurl: url, mpsuser: user, mpspass: pass, mpskeepalive: 30000,
        clientname: name, clientaddress: '127.0.0.1', clientuuid: uuid,
        conntype: 0, // CIRA: no MeshCentral JSON_CONTROL messages (mpsd has no such command)
    });
    if (!client) { note('DRIVER: CreateAPFClient refused the arguments'); process.exit(1); }
    client.onChannelClosed = () => { note('DRIVER: tunnel closed'); };
    client.connect();
});
process.on('SIGTERM', () => { clientLog.end(() => process.exit(0)); });
