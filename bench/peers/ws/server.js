'use strict';
// The `ws` peer of qtnotif's benchmark: a notification server as a Node.js developer would write
// it with the ws package. Rooms are a Map from key to the Set of sockets listening to it; a
// notification is stringified once and sent to every listener. The wire contract (messages,
// options, the "listening on" line) is in ../README.md.
//
//   node bench/peers/ws/server.js [--host 127.0.0.1] [--port 0] [--tls-certificate F --tls-key F]

const http = require('node:http');
const https = require('node:https');
const { WebSocketServer, WebSocket } = require('ws');
const { parseOptions, announce, exitWhenAsked, failToStart } = require('../common');

const name = 'ws/server.js';
const { host, port, tls } = parseOptions(name);
// The HTTP server ws takes the upgrades from: an HTTPS one for wss://.
const httpServer = tls ? https.createServer(tls) : http.createServer();

// Every 30 s each socket that did not answer the previous ping is dropped, and the others are
// pinged again: the heartbeat pattern of the ws documentation.
const heartbeatIntervalMs = 30_000;

const wss = new WebSocketServer({
    server: httpServer,
    // 64 KiB, like qtnotif's default frame limit: a larger message is a bug or an attack here,
    // and ws closes the connection (1009) instead of buffering it. The ws default is 100 MiB.
    maxPayload: 64 * 1024,
    // No permessage-deflate (off by default in ws 8 too): neither the load generator nor qtnotif
    // compresses, and the comparison is of the same bytes on the wire.
    perMessageDeflate: false,
});

// key -> Set of sockets listening to it. A key with no listener left is removed.
const rooms = new Map();

function listen(socket, key) {
    let room = rooms.get(key);
    if (!room) {
        room = new Set();
        rooms.set(key, room);
    }
    room.add(socket); // listening twice is harmless: a Set holds the socket once
    socket.keys.add(key);
    socket.send(JSON.stringify({ op: 'listening', key }));
}

function publish(key, data) {
    const room = rooms.get(key);
    if (!room)
        return;
    const text = JSON.stringify({ key, data }); // once per notification, not per listener
    for (const socket of room) {
        if (socket.readyState === WebSocket.OPEN)
            socket.send(text);
    }
}

function forget(socket) {
    for (const key of socket.keys) {
        const room = rooms.get(key);
        room.delete(socket);
        if (room.size === 0)
            rooms.delete(key);
    }
    socket.keys.clear();
}

function onMessage(socket, message, isBinary) {
    if (isBinary)
        return;
    let request;
    try {
        request = JSON.parse(message);
    } catch {
        return; // not JSON: ignored, like any message the contract does not know
    }
    if (request === null || typeof request !== 'object' || typeof request.key !== 'string')
        return;
    if (request.op === 'listen')
        listen(socket, request.key);
    else if (request.op === 'publish')
        publish(request.key, request.data);
}

wss.on('connection', (socket) => {
    socket.keys = new Set(); // the keys this socket listens to, to leave the rooms on close
    socket.isAlive = true;
    socket.on('pong', () => {
        socket.isAlive = true;
    });
    socket.on('message', (message, isBinary) => onMessage(socket, message, isBinary));
    socket.on('close', () => forget(socket));
    // A protocol error (a frame over maxPayload, bad UTF-8...) is followed by 'close', which
    // cleans up; the handler only keeps the error from being thrown as an unhandled event.
    socket.on('error', () => {});
});

const heartbeat = setInterval(() => {
    for (const socket of wss.clients) {
        if (!socket.isAlive) {
            socket.terminate();
            continue;
        }
        socket.isAlive = false;
        socket.ping();
    }
}, heartbeatIntervalMs);
wss.on('close', () => clearInterval(heartbeat));

httpServer.on('error', (error) => failToStart(name, error));
httpServer.listen(port, host, () => {
    announce(httpServer.address(), tls !== null);
    exitWhenAsked();
});
