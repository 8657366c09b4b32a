'use strict';
// Checks the peer servers against the wire contract of README.md, on loopback, the way the load
// generator speaks to them: the ws package's client for `ws`, and for `socketio` a plain
// WebSocket on /socket.io/?EIO=4&transport=websocket speaking Engine.IO v4 and Socket.IO by hand
// ("0{...}", "40", "42[...]", ping "2" and pong "3"), as the C++ generator does. Exits with status
// 1 on the first mismatch, 0 when all is as the contract says.
//
//   node bench/peers/check.js [--heartbeat] [--load] [ws|socketio ...]
//
// By default, for each server (about a second): the "listening on" line, listen and its answer,
// publish and delivery with the exact text of each message, who gets a notification and who does
// not, listening twice, messages the contract does not know, the 64 KiB limit, a disconnect, and
// the exit on stdin closing and on SIGTERM.
//   --heartbeat  also waits for the servers' heartbeat: a client that answers the pings stays
//                connected, one that does not is dropped (about 65 s: ws pings every 30 s)
//   --load       also runs 200 connections listening to 20 keys (10 listeners each), one
//                publisher per key keeping 10 notifications in flight for 3 s, and checks that
//                each listener got every notification of its key once and in order; prints a
//                rough rate and latency. Client and server share this machine's cores: the
//                figures are a sanity check, not a benchmark result (that is the load generator's
//                job).
// Requires the packages installed by bench/peers/install.sh.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const { parseArgs } = require('node:util');
const WebSocket = require('ws');

// Limits on how long a step may take before the check fails: none of them paces the check, which
// goes on as soon as what it waits for has happened.
const stepTimeoutMs = 10_000;

function withTimeout(promise, ms, what) {
    let timer;
    const timeout = new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// --- Servers ---------------------------------------------------------------------------------

// A server process started from its folder here, with stdin a pipe kept open and stdout read.
class ServerProcess {
    constructor(system, args) {
        this.system = system;
        this.stdout = '';
        this.child = spawn(process.execPath, [path.join(__dirname, system, 'server.js'), ...args],
                           { stdio: ['pipe', 'pipe', 'inherit'] });
        this.exited = new Promise((resolve) => {
            this.child.on('exit', (code, signal) => resolve({ code, signal }));
        });
        this.child.stdout.setEncoding('utf8');
        this.child.stdout.on('data', (chunk) => {
            this.stdout += chunk;
        });
    }

    // Resolves with the URL once the server printed its first line, which must be exactly
    // "listening on ws://HOST:PORT/".
    async listening(host) {
        const line = await withTimeout(new Promise((resolve, reject) => {
            const look = () => {
                const end = this.stdout.indexOf('\n');
                if (end >= 0)
                    resolve(this.stdout.slice(0, end + 1));
            };
            this.child.stdout.on('data', look);
            look();
            this.exited.then(({ code, signal }) => reject(
                new Error(`${this.system} server exited (${code ?? signal}) before listening`)));
        }), stepTimeoutMs, `${this.system} server: "listening on" line`);
        const escapedHost = host.replace(/[.[\]]/g, '\\$&');
        const match = new RegExp(`^listening on ws://${escapedHost}:(\\d+)/\\n$`).exec(line);
        assert.ok(match, `${this.system}: first line ${JSON.stringify(line)}`);
        this.port = Number(match[1]);
        assert.ok(this.port > 0 && this.port < 65536, `${this.system}: port in ${line}`);
        return `ws://${host}:${this.port}`;
    }

    // Closes stdin (or sends SIGTERM) and checks that the server exits with status 0 having
    // printed nothing but its one line.
    async stop(how) {
        if (how === 'SIGTERM')
            this.child.kill('SIGTERM');
        else
            this.child.stdin.end();
        const { code, signal } = await withTimeout(this.exited, stepTimeoutMs,
                                                   `${this.system} server: exit on ${how}`);
        assert.equal(signal, null, `${this.system}: killed by ${signal} on ${how}`);
        assert.equal(code, 0, `${this.system}: exit status on ${how}`);
        assert.equal(this.stdout.split('\n').length, 2,
                     `${this.system}: one line on stdout: ${JSON.stringify(this.stdout)}`);
    }

    kill() {
        if (this.child.exitCode === null && this.child.signalCode === null)
            this.child.kill('SIGKILL');
    }
}

// --- Clients ---------------------------------------------------------------------------------

// A WebSocket connection whose text messages queue up until next() takes them, in order.
class Connection {
    constructor(url, options = {}) {
        this.socket = new WebSocket(url, { perMessageDeflate: false, ...options });
        this.messages = [];
        this.waiting = null;
        this.closed = new Promise((resolve) => {
            this.socket.on('close', (code) => {
                resolve(code);
                this.wake();
            });
        });
        this.socket.on('error', () => {}); // 'close' follows and is what the checks look at
        this.socket.on('message', (data, isBinary) => {
            assert.equal(isBinary, false, 'servers send text frames only');
            const text = data.toString('utf8');
            if (!this.filter(text)) {
                this.messages.push(text);
                this.wake();
            }
        });
    }

    // Returns true for a message handled here rather than queued (Engine.IO's ping).
    filter() {
        return false;
    }

    wake() {
        if (this.waiting) {
            this.waiting();
            this.waiting = null;
        }
    }

    open() {
        return withTimeout(new Promise((resolve, reject) => {
            this.socket.once('open', resolve);
            this.socket.once('error', reject);
        }), stepTimeoutMs, 'WebSocket upgrade');
    }

    async next(what) {
        return withTimeout((async () => {
            while (this.messages.length === 0) {
                if (this.socket.readyState === WebSocket.CLOSED)
                    throw new Error(`connection closed while waiting for ${what}`);
                await new Promise((resolve) => {
                    this.waiting = resolve;
                });
            }
            return this.messages.shift();
        })(), stepTimeoutMs, what);
    }

    send(text) {
        this.socket.send(text);
    }

    close() {
        this.socket.close();
        return withTimeout(this.closed, stepTimeoutMs, 'close');
    }
}

// The messages of each server, as README.md's table has them.
const protocols = {
    ws: {
        async connect(baseUrl, options) {
            const connection = new Connection(`${baseUrl}/`, options);
            await connection.open();
            return connection;
        },
        listen: (key) => JSON.stringify({ op: 'listen', key }),
        listening: (key) => JSON.stringify({ op: 'listening', key }),
        publish: (key, data) => JSON.stringify({ op: 'publish', key, data }),
        notif: (key, data) => JSON.stringify({ key, data }),
        unknown: ['not json', '{"op":"unlisten","key":"k1"}', '{"op":"listen","key":5}',
                  '{"op":"publish"}', 'null', '[1,2]'],
    },
    socketio: {
        // The Engine.IO handshake, then the Socket.IO connect to the main namespace.
        async connect(baseUrl, { answerPings = true } = {}) {
            const connection = new Connection(`${baseUrl}/socket.io/?EIO=4&transport=websocket`);
            connection.pings = 0;
            connection.filter = (text) => {
                if (text !== '2')
                    return false;
                connection.pings++;
                if (answerPings)
                    connection.send('3');
                return true;
            };
            await connection.open();
            const open = await connection.next('Engine.IO open packet');
            assert.equal(open[0], '0', `Engine.IO open packet: ${open}`);
            const handshake = JSON.parse(open.slice(1));
            assert.equal(typeof handshake.sid, 'string', `sid in ${open}`);
            assert.deepEqual(handshake.upgrades, [], `no upgrades (WebSocket only) in ${open}`);
            assert.equal(handshake.pingInterval, 25_000, `pingInterval in ${open}`);
            assert.equal(handshake.pingTimeout, 20_000, `pingTimeout in ${open}`);
            assert.equal(handshake.maxPayload, 64 * 1024, `maxPayload in ${open}`);
            connection.send('40');
            const connected = await connection.next('Socket.IO connect answer');
            assert.match(connected, /^40\{"sid":"[^"]+"\}$/, 'Socket.IO connect answer');
            return connection;
        },
        listen: (key) => `42${JSON.stringify(['listen', key])}`,
        listening: (key) => `42${JSON.stringify(['listening', key])}`,
        publish: (key, data) => `42${JSON.stringify(['publish', { key, data }])}`,
        notif: (key, data) => `42${JSON.stringify(['notif', { key, data }])}`,
        unknown: ['42["unlisten","k1"]', '42["listen",5]', '42["publish","k1"]', '42["publish"]',
                  '42["publish",null]'],
    },
};

// What the load generator puts into a notification: its clock in µs, a sequence number per key,
// and padding.
function notificationData(n, padding = 'x'.repeat(40)) {
    return { t: Number(process.hrtime.bigint() / 1000n), n, p: padding };
}

// --- The contract ----------------------------------------------------------------------------

async function checkContract(system) {
    const protocol = protocols[system];
    const server = new ServerProcess(system, ['--port', '0']); // --host by default: 127.0.0.1
    try {
        const url = await server.listening('127.0.0.1');
        const connect = (options) => protocol.connect(url, options);
        const [a, b, c] = await Promise.all([connect(), connect(), connect()]);

        const listen = async (connection, key) => {
            connection.send(protocol.listen(key));
            assert.equal(await connection.next(`listening ${key}`), protocol.listening(key),
                         `${system}: answer to listen ${key}`);
        };
        const expectNotif = async (connection, key, data, who) => {
            const text = await connection.next(`${who}: notification on ${key}`);
            assert.equal(text, protocol.notif(key, data), `${system}: ${who}'s notification`);
            assert.ok(text.includes('"t":') && text.includes('"n":'),
                      `${system}: "t": and "n": in ${text}`);
        };

        // a listens to k1 twice, b to k1 and k2, c to nothing; c publishes on k1.
        await listen(a, 'k1');
        await listen(a, 'k1');
        await listen(b, 'k1');
        await listen(b, 'k2');
        // Nested data, non-ASCII text and escapes pass unchanged.
        const d1 = { ...notificationData(1, 'é€😀 "quoted" \\ \n'),
                     nested: { list: [1, null, true] } };
        c.send(protocol.publish('k1', d1));
        await expectNotif(a, 'k1', d1, 'a');
        await expectNotif(b, 'k1', d1, 'b');
        // c, which does not listen to k1, got nothing: the answer to its next listen is the first
        // message it receives (one connection's messages keep their order).
        await listen(c, 'k3');

        // The publisher gets its own notification when it listens to the key; a, listening to k1
        // only, does not, and got k1's notification once although it listened twice.
        const d2 = notificationData(2);
        b.send(protocol.publish('k2', d2));
        await expectNotif(b, 'k2', d2, 'b (publisher)');
        await listen(a, 'k4');

        // Messages the contract does not know are ignored; the connection stays.
        for (const text of protocol.unknown)
            a.send(text);
        if (system === 'ws')
            a.socket.send(Buffer.from('{"op":"listen","key":"k1"}'), { binary: true });
        await listen(a, 'k5');

        // A message over 64 KiB closes that connection (1009: message too big), and only it.
        const big = await connect();
        big.send(protocol.publish('k1', { p: 'x'.repeat(64 * 1024) }));
        const bigCode = await withTimeout(big.closed, stepTimeoutMs, 'closed for 64 KiB');
        assert.equal(bigCode, 1009, `${system}: close code for a message over 64 KiB`);
        const d3 = notificationData(3);
        c.send(protocol.publish('k1', d3));
        await expectNotif(a, 'k1', d3, 'a');
        await expectNotif(b, 'k1', d3, 'b');

        // After b leaves, k1 still reaches a, and k2 (no listener left) reaches no one.
        await b.close();
        const d4 = notificationData(4);
        c.send(protocol.publish('k2', d4));
        c.send(protocol.publish('k1', d4));
        await expectNotif(a, 'k1', d4, 'a');
        await listen(c, 'k6');

        if (system === 'socketio') {
            // WebSocket only: no long-polling, and no client bundle served.
            const httpUrl = url.replace('ws:', 'http:');
            const polling = await httpStatus(`${httpUrl}/socket.io/?EIO=4&transport=polling`);
            assert.equal(polling, 400, `${system}: HTTP long-polling refused`);
            const bundle = await httpStatus(`${httpUrl}/socket.io/socket.io.js`);
            assert.notEqual(bundle, 200, `${system}: no client bundle served`);
        }

        // Stopping by closing stdin, with connections open.
        await server.stop('stdin');
        await withTimeout(Promise.all([a.closed, c.closed]), stepTimeoutMs,
                          'connections closed by the exit');
    } finally {
        server.kill();
    }

    // --host and a given --port, stopped by SIGTERM with a connection open.
    const port = await freePort();
    const second = new ServerProcess(system, ['--host', '127.0.0.1', '--port', String(port)]);
    try {
        const url = await second.listening('127.0.0.1');
        assert.equal(second.port, port, `${system}: the port given`);
        const client = await protocol.connect(url);
        await second.stop('SIGTERM');
        await withTimeout(client.closed, stepTimeoutMs, 'connection closed by the exit');
    } finally {
        second.kill();
    }
    console.log(`${system}: contract ok`);
}

// The status of a GET (node:http rather than fetch, which Node.js 18 calls experimental).
function httpStatus(url) {
    return withTimeout(new Promise((resolve, reject) => {
        http.get(url, (response) => {
            response.resume();
            resolve(response.statusCode);
        }).on('error', reject);
    }), stepTimeoutMs, `GET ${url}`);
}

function freePort() {
    return new Promise((resolve, reject) => {
        const probe = net.createServer();
        probe.on('error', reject);
        probe.listen(0, '127.0.0.1', () => {
            const { port } = probe.address();
            probe.close(() => resolve(port));
        });
    });
}

// --- Heartbeat -------------------------------------------------------------------------------

// A client that answers pings stays connected through a ping, one that does not is dropped: ws
// pings every 30 s and terminates a socket that did not answer the previous ping; Engine.IO
// pings every 25 s and closes a connection whose pong has not come 20 s later.
async function checkHeartbeat(system) {
    const protocol = protocols[system];
    const server = new ServerProcess(system, []);
    try {
        const url = await server.listening('127.0.0.1');
        const alive = await protocol.connect(url);
        const silent = system === 'ws' ? await protocol.connect(url, { autoPong: false })
                                       : await protocol.connect(url, { answerPings: false });
        const firstPing = system === 'ws'
            ? new Promise((resolve) => alive.socket.once('ping', resolve))
            : (async () => {
                while (alive.pings === 0)
                    await new Promise((resolve) => alive.socket.once('message', resolve));
            })();
        await withTimeout(firstPing, 35_000, `${system}: a heartbeat ping within 30 s`);
        const code = await withTimeout(silent.closed, 45_000,
                                       `${system}: a client that does not answer pings dropped`);
        assert.equal(alive.socket.readyState, WebSocket.OPEN, `${system}: answering client kept`);
        alive.send(protocol.listen('k1'));
        assert.equal(await alive.next('listening k1'), protocol.listening('k1'));
        console.log(`${system}: heartbeat ok (silent client closed with ${code})`);
        await server.stop('SIGTERM');
    } finally {
        server.kill();
    }
}

// --- Load ------------------------------------------------------------------------------------

const load = { connections: 200, keys: 20, window: 10, durationMs: 3_000 };

// The CPU time a process used, in µs, from /proc (Linux): user and system, in clock ticks of
// 10 ms.
function cpuTimeUs(pid) {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function checkLoad(system) {
    const protocol = protocols[system];
    const server = new ServerProcess(system, []);
    try {
        const url = await server.listening('127.0.0.1');
        const connections = [];
        for (let i = 0; i < load.connections; i += 50) {
            const batch = Array.from({ length: Math.min(50, load.connections - i) },
                                     () => protocol.connect(url));
            connections.push(...await Promise.all(batch));
        }
        // Connection i listens to key i % keys; connection k (< keys) also publishes on key k.
        const keyOf = (i) => `key${i % load.keys}`;
        await Promise.all(connections.map(async (connection, i) => {
            connection.send(protocol.listen(keyOf(i)));
            assert.equal(await connection.next('listening'), protocol.listening(keyOf(i)));
        }));

        const published = new Array(load.keys).fill(0);
        const received = new Array(load.connections).fill(0);
        const latenciesUs = [];
        let errors = 0;
        let measuring = true;
        let finish;
        const finished = new Promise((resolve) => {
            finish = resolve;
        });
        const publish = (k) => {
            connections[k].send(protocol.publish(keyOf(k), notificationData(published[k]++)));
        };
        // The notification's { key, data }: the whole message for ws, the event's argument in
        // 42["notif",{...}] for Socket.IO.
        const parse = system === 'ws' ? (text) => JSON.parse(text)
                                      : (text) => JSON.parse(text.slice(2))[1];
        const allDelivered = () => received.every((count, i) => count === published[i % load.keys]);
        connections.forEach((connection, i) => {
            // From here on, messages are counted as they come instead of queued.
            connection.socket.removeAllListeners('message');
            connection.socket.on('message', (message) => {
                const text = message.toString('utf8');
                if (text === '2') {
                    connection.send('3');
                    return;
                }
                const { key, data } = parse(text);
                if (key !== keyOf(i) || data.n !== received[i])
                    errors++;
                received[i]++;
                latenciesUs.push(Number(process.hrtime.bigint() / 1000n) - data.t);
                if (measuring && i < load.keys)
                    publish(i); // its own notification came back: one more in flight
                else if (!measuring && allDelivered())
                    finish();
            });
        });

        const cpuBefore = cpuTimeUs(server.child.pid);
        const start = process.hrtime.bigint();
        for (let k = 0; k < load.keys; k++) {
            for (let w = 0; w < load.window; w++)
                publish(k);
        }
        await new Promise((resolve) => setTimeout(resolve, load.durationMs)); // the run's length
        measuring = false;
        if (allDelivered())
            finish();
        await withTimeout(finished, stepTimeoutMs, `${system}: every notification delivered`);
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        const serverCpu = (cpuTimeUs(server.child.pid) - cpuBefore) / 1e4 / seconds;

        const delivered = received.reduce((sum, count) => sum + count, 0);
        const expected = published.reduce((sum, count) => sum + count, 0)
            * (load.connections / load.keys);
        assert.equal(errors, 0, `${system}: notifications on the wrong key or out of order`);
        assert.equal(delivered, expected, `${system}: deliveries`);
        latenciesUs.sort((x, y) => x - y);
        const percentile = (p) => latenciesUs[Math.min(latenciesUs.length - 1,
                                                       Math.floor(p * latenciesUs.length))];
        console.log(`${system}: load ok: ${load.connections} connections, ${load.keys} keys, `
                    + `${delivered} deliveries in ${seconds.toFixed(1)} s `
                    + `(${Math.round(delivered / seconds)}/s), latency p50 ${percentile(0.5)} µs `
                    + `p99 ${percentile(0.99)} µs, server CPU ${serverCpu.toFixed(0)} % of a core`);
        await server.stop('stdin');
    } finally {
        server.kill();
    }
}

// --- Main ------------------------------------------------------------------------------------

async function main() {
    const { values, positionals } = parseArgs({
        options: { heartbeat: { type: 'boolean' }, load: { type: 'boolean' } },
        allowPositionals: true,
    });
    const systems = positionals.length > 0 ? positionals : Object.keys(protocols);
    for (const system of systems) {
        if (!protocols[system])
            throw new Error(`unknown server "${system}" (known: ${Object.keys(protocols)})`);
    }
    for (const system of systems)
        await checkContract(system);
    if (values.heartbeat)
        await Promise.all(systems.map(checkHeartbeat)); // side by side: they mostly wait
    if (values.load) {
        for (const system of systems)
            await checkLoad(system);
    }
}

main().then(() => process.exit(0), (error) => {
    console.error(`check.js: FAILED: ${error.message}`);
    process.exit(1);
});
