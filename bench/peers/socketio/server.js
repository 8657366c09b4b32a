'use strict';
// The `socketio` peer of qtnotif's benchmark: a notification server as a Node.js developer would
// write it with Socket.IO 4. A key is a room; listening joins it, and a notification is one
// io.to(key).emit(), which Socket.IO encodes once for the whole room. The wire contract
// (events, options, the "listening on" line) is in ../README.md.
//
//   node bench/peers/socketio/server.js [--host 127.0.0.1] [--port 0] [--tls-certificate F --tls-key F]

const http = require('node:http');
const https = require('node:https');
const { Server } = require('socket.io');
const { parseOptions, announce, exitWhenAsked, failToStart } = require('../common');

const name = 'socketio/server.js';
const { host, port, tls } = parseOptions(name);

const httpServer = tls ? https.createServer(tls) : http.createServer();
const io = new Server(httpServer, {
    // WebSocket from the first request, no HTTP long-polling: the load generator, like qtnotif's
    // clients, speaks only WebSocket (/socket.io/?EIO=4&transport=websocket).
    transports: ['websocket'],
    // No permessage-deflate (off by default in Socket.IO 4 too): neither the load generator nor
    // qtnotif compresses, and the comparison is of the same bytes on the wire.
    perMessageDeflate: false,
    // The server only relays events; it does not serve the browser client bundle.
    serveClient: false,
    // Engine.IO's heartbeat: a ping ("2") every 25 s, and a connection whose pong ("3") has not
    // come 20 s later is closed. These are Socket.IO's defaults, written out because the load
    // generator answers them.
    pingInterval: 25_000,
    pingTimeout: 20_000,
    // 64 KiB, like qtnotif's default frame limit (Socket.IO's default is 1 MB): a larger message
    // is a bug or an attack here, and the connection is closed.
    maxHttpBufferSize: 64 * 1024,
});

io.on('connection', (socket) => {
    socket.on('listen', (key) => {
        if (typeof key !== 'string')
            return;
        socket.join(key); // joining twice is harmless: a room holds the socket once
        socket.emit('listening', key);
    });
    socket.on('publish', (message) => {
        if (message === null || typeof message !== 'object' || typeof message.key !== 'string')
            return;
        io.to(message.key).emit('notif', { key: message.key, data: message.data });
    });
});

httpServer.on('error', (error) => failToStart(name, error));
httpServer.listen(port, host, () => {
    announce(httpServer.address(), tls !== null);
    exitWhenAsked();
});
