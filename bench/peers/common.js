'use strict';
// What the peer servers share, as README.md asks of every server: the options --host, --port,
// --tls-certificate and --tls-key, the one line "listening on ws://HOST:PORT/" (wss:// with TLS)
// once they accept connections, and exit status 0 when stdin closes or on SIGTERM.

const fs = require('node:fs');
const { parseArgs } = require('node:util');

// Returns { host, port, tls } from the command line, tls being null or { cert, key } (the PEM
// texts, as https.createServer() takes them); prints the usage and exits with status 2 on
// anything else.
function parseOptions(name) {
    const usage = `usage: node ${name} [--host ADDRESS] [--port PORT]`
        + ' [--tls-certificate FILE --tls-key FILE]\n'
        + '  --host ADDRESS  the address to listen on (127.0.0.1)\n'
        + '  --port PORT     the port to listen on (0: any free port)\n'
        + '  --tls-certificate FILE, --tls-key FILE  serve wss:// with this PEM certificate and key\n'
        + 'Prints "listening on ws://HOST:PORT/" once listening; exits when stdin closes or on '
        + 'SIGTERM.\n';
    let values;
    try {
        ({ values } = parseArgs({
            options: {
                host: { type: 'string', default: '127.0.0.1' },
                port: { type: 'string', default: '0' },
                'tls-certificate': { type: 'string' },
                'tls-key': { type: 'string' },
                help: { type: 'boolean', short: 'h', default: false },
            },
        }));
    } catch (error) {
        process.stderr.write(`${name}: ${error.message}\n${usage}`);
        process.exit(2);
    }
    if (values.help) {
        process.stdout.write(usage);
        process.exit(0);
    }
    const port = Number(values.port);
    if (!/^\d+$/.test(values.port) || port > 65535) {
        process.stderr.write(`${name}: --port wants a number from 0 to 65535\n${usage}`);
        process.exit(2);
    }
    const certificate = values['tls-certificate'];
    const key = values['tls-key'];
    if ((certificate === undefined) !== (key === undefined)) {
        process.stderr.write(`${name}: --tls-certificate and --tls-key go together\n${usage}`);
        process.exit(2);
    }
    let tls = null;
    if (certificate !== undefined) {
        try {
            tls = { cert: fs.readFileSync(certificate), key: fs.readFileSync(key) };
        } catch (error) {
            process.stderr.write(`${name}: ${error.message}\n`);
            process.exit(2);
        }
    }
    return { host: values.host, port, tls };
}

// Prints the line scripts wait for. `address` is what net.Server.address() returns: the port
// actually bound, also when --port was 0; `secure` says wss://. Writes to a pipe or a file are
// synchronous in Node.js on Linux, so the line is out before anything else happens.
function announce(address, secure) {
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    process.stdout.write(`listening on ${secure ? 'wss' : 'ws'}://${host}:${address.port}/\n`);
}

// Exits with status 0 when stdin reaches its end (the script that started the server closed its
// end of the pipe, or a person pressed Ctrl-D) or on SIGTERM. Connections are not closed one by
// one: the process ends, and the kernel closes them.
function exitWhenAsked() {
    const stop = () => process.exit(0);
    process.on('SIGTERM', stop);
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume(); // read (and drop) whatever comes, so that 'end' is seen
}

// Prints why the server could not start (an address in use, say) and exits with status 1.
function failToStart(name, error) {
    process.stderr.write(`${name}: ${error.message}\n`);
    process.exit(1);
}

module.exports = { parseOptions, announce, exitWhenAsked, failToStart };
