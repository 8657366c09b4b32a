#include <QtNotif/handshakerequest.h>

#include <QtCore/QUrlQuery>

namespace QtNotif {

HandshakeRequest::HandshakeRequest(const QUrl &url,
                                   const QList<QPair<QByteArray, QByteArray>> &headers,
                                   const QHostAddress &peerAddress)
    : m_url(url), m_headers(headers), m_peerAddress(peerAddress)
{
}

QByteArray HandshakeRequest::header(const QByteArray &name) const
{
    for (const auto &[headerName, value] : m_headers) {
        if (headerName.compare(name, Qt::CaseInsensitive) == 0)
            return value;
    }
    return {};
}

QString HandshakeRequest::queryItem(const QString &name) const
{
    const QUrlQuery query(m_url);
    if (!query.hasQueryItem(name))
        return {};
    return query.queryItemValue(name, QUrl::FullyDecoded);
}

QByteArray HandshakeRequest::cookie(const QByteArray &name) const
{
    // Cookie: a=1; b=2
    const QList<QByteArray> pairs = header("Cookie").split(';');
    for (const QByteArray &pair : pairs) {
        const qsizetype equals = pair.indexOf('=');
        if (equals < 0)
            continue;
        if (pair.left(equals).trimmed() == name)
            return pair.mid(equals + 1).trimmed();
    }
    return {};
}

QByteArray HandshakeRequest::bearerToken() const
{
    const QByteArray authorization = header("Authorization").trimmed();
    constexpr char prefix[] = "Bearer ";
    if (!authorization.startsWith(prefix) && !authorization.toLower().startsWith("bearer "))
        return {};
    return authorization.mid(sizeof(prefix) - 1).trimmed();
}

QList<QByteArray> HandshakeRequest::subprotocols() const
{
    // Sec-WebSocket-Protocol: a, b (possibly over several header lines)
    QList<QByteArray> offered;
    for (const auto &[name, value] : m_headers) {
        if (name.compare("Sec-WebSocket-Protocol", Qt::CaseInsensitive) != 0)
            continue;
        const QList<QByteArray> parts = value.split(',');
        for (const QByteArray &part : parts) {
            if (const QByteArray trimmed = part.trimmed(); !trimmed.isEmpty())
                offered.append(trimmed);
        }
    }
    return offered;
}

} // namespace QtNotif
