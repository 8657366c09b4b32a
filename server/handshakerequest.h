#pragma once

#include <QtNotif/global.h>

#include <QtCore/QByteArray>
#include <QtCore/QList>
#include <QtCore/QPair>
#include <QtCore/QUrl>
#include <QtNetwork/QHostAddress>

namespace QtNotif {

// The WebSocket upgrade request as the authenticator sees it: URL (with its query), headers,
// cookies and the peer's address.
class QTNOTIF_SERVER_EXPORT HandshakeRequest
{
public:
    HandshakeRequest() = default;
    HandshakeRequest(const QUrl &url, const QList<QPair<QByteArray, QByteArray>> &headers,
                     const QHostAddress &peerAddress);

    QUrl url() const { return m_url; }
    QHostAddress peerAddress() const { return m_peerAddress; }
    // Header names compare case-insensitively; a missing header gives a null QByteArray.
    QByteArray header(const QByteArray &name) const;
    QList<QPair<QByteArray, QByteArray>> headers() const { return m_headers; }
    // A query parameter of the URL, percent-decoded; null when absent.
    QString queryItem(const QString &name) const;
    // A cookie from the Cookie header; null when absent.
    QByteArray cookie(const QByteArray &name) const;
    // The token of an "Authorization: Bearer <token>" header; null when absent.
    QByteArray bearerToken() const;
    // The WebSocket subprotocols the client offered (Sec-WebSocket-Protocol), in its order.
    QList<QByteArray> subprotocols() const;

private:
    QUrl m_url;
    QList<QPair<QByteArray, QByteArray>> m_headers;
    QHostAddress m_peerAddress;
};

} // namespace QtNotif
