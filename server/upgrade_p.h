#pragma once

#include <QtNotif/handshakerequest.h>

#include <QtCore/QByteArray>
#include <QtCore/QByteArrayView>
#include <QtCore/QString>

namespace QtNotif {

// The server's side of a WebSocket opening handshake (RFC 6455, section 4.2): reads a client's
// upgrade request and makes the answer, "101 Switching Protocols" or an HTTP error.
struct Upgrade
{
    // Reads request, all its bytes up to and including the empty line that ends it, from peer
    // over ws:// (or wss:// when secure). The server speaks subprotocol: chosen when the client
    // offers it.
    static Upgrade read(QByteArrayView request, bool secure, const QHostAddress &peer,
                        QByteArrayView subprotocol);

    // The HTTP status of the answer: 101, or 400 (a malformed request, or not a WebSocket
    // upgrade), 405 (not GET), 426 (a WebSocket version other than 13, with the version the
    // server speaks), 505 (not HTTP/1.1).
    int status = 0;
    // The answer's bytes, to write to the client; after an error, the server closes the
    // connection.
    QByteArray response;
    // What was wrong, for the log; empty when status is 101.
    QString error;

    // When status is 101: the request (URL, headers, peer), the subprotocol chosen (empty
    // when the client offered none the server speaks) and the client's Origin header.
    HandshakeRequest request;
    QString subprotocol;
    QString origin;
};

} // namespace QtNotif
