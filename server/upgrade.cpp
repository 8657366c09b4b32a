#include "upgrade_p.h"

#include <QtCore/QCryptographicHash>

#include <algorithm>

namespace QtNotif {

namespace {

constexpr QByteArrayView EndOfLine = "\r\n";
// RFC 6455, 1.3: appended to the client's key before hashing it into Sec-WebSocket-Accept.
constexpr QByteArrayView AcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// A character of an HTTP token, as a header's name (RFC 9110, 5.6.2).
bool isTokenChar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return QByteArrayView("!#$%&'*+-.^_`|~").contains(c);
}

bool isToken(QByteArrayView text)
{
    return !text.isEmpty() && std::all_of(text.begin(), text.end(), isTokenChar);
}

// Whether a header's value holds a control character other than a tab (RFC 9110, 5.5).
bool hasControlCharacter(QByteArrayView value)
{
    return std::any_of(value.begin(), value.end(),
                       [](char c) { return (uchar(c) < 0x20 && c != '\t') || c == 0x7f; });
}

// Whether the comma-separated list holds token, whatever its case (Connection: keep-alive,
// Upgrade).
bool listHolds(QByteArrayView list, QByteArrayView token)
{
    qsizetype start = 0;
    while (start <= list.size()) {
        qsizetype comma = list.indexOf(',', start);
        if (comma < 0)
            comma = list.size();
        if (list.sliced(start, comma - start).trimmed().compare(token, Qt::CaseInsensitive) == 0)
            return true;
        start = comma + 1;
    }
    return false;
}

Upgrade refuse(int status, const char *error, QByteArrayView extraHeaders = {})
{
    const char *reason = status == 405   ? "Method Not Allowed"
                         : status == 426 ? "Upgrade Required"
                         : status == 505 ? "HTTP Version Not Supported"
                                         : "Bad Request";
    Upgrade upgrade;
    upgrade.status = status;
    upgrade.error = QString::fromLatin1(error);
    upgrade.response = "HTTP/1.1 " + QByteArray::number(status) + ' ' + reason + "\r\n"
                       + extraHeaders.toByteArray()
                       + "Connection: close\r\nContent-Length: 0\r\n\r\n";
    return upgrade;
}

} // namespace

Upgrade Upgrade::read(QByteArrayView request, bool secure, const QHostAddress &peer,
                      QByteArrayView subprotocol)
{
    if (!request.endsWith("\r\n\r\n"))
        return refuse(400, "an unfinished request");
    // The request line and the header lines, without the empty line.
    const QByteArrayView head = request.chopped(4);
    qsizetype lineEnd = head.indexOf(EndOfLine);
    if (lineEnd < 0)
        lineEnd = head.size();

    // GET <path and query> HTTP/1.1
    const QByteArrayView requestLine = head.first(lineEnd);
    const qsizetype firstSpace = requestLine.indexOf(' ');
    const qsizetype lastSpace = requestLine.lastIndexOf(' ');
    if (firstSpace <= 0 || lastSpace == firstSpace)
        return refuse(400, "a malformed request line");
    const QByteArrayView method = requestLine.first(firstSpace);
    const QByteArrayView target = requestLine.sliced(firstSpace + 1, lastSpace - firstSpace - 1);
    const QByteArrayView version = requestLine.sliced(lastSpace + 1);
    if (version != "HTTP/1.1")
        return version.startsWith("HTTP/") ? refuse(505, "an HTTP version other than 1.1")
                                           : refuse(400, "a malformed request line");
    if (method != "GET")
        return refuse(405, "a method other than GET", "Allow: GET\r\n");
    // QWebSocket sends a URL without a path as its query alone ("?token=t").
    if (!(target.startsWith('/') || target.startsWith('?'))
        || std::any_of(target.begin(), target.end(), [](char c) { return uchar(c) <= 0x20; })) {
        return refuse(400, "a request target that is not a path");
    }

    QList<QPair<QByteArray, QByteArray>> headers;
    QByteArrayView host, upgrade, connection, key, webSocketVersion;
    bool hasVersion = false;
    for (qsizetype start = lineEnd + EndOfLine.size(); start < head.size();) {
        qsizetype end = head.indexOf(EndOfLine, start);
        if (end < 0)
            end = head.size();
        const QByteArrayView line = head.sliced(start, end - start);
        start = end + EndOfLine.size();
        const qsizetype colon = line.indexOf(':');
        if (colon < 0 || !isToken(line.first(colon)))
            return refuse(400, "a malformed header line");
        const QByteArrayView name = line.first(colon);
        const QByteArrayView value = line.sliced(colon + 1).trimmed();
        if (hasControlCharacter(value))
            return refuse(400, "a control character in a header");
        headers.append({ name.toByteArray(), value.toByteArray() });
        // The first of each, as HandshakeRequest::header() reads them.
        const auto is = [name](QByteArrayView header) {
            return name.compare(header, Qt::CaseInsensitive) == 0;
        };
        if (is("Host") && host.isNull())
            host = value;
        else if (is("Upgrade") && upgrade.isNull())
            upgrade = value;
        else if (is("Connection") && connection.isNull())
            connection = value;
        else if (is("Sec-WebSocket-Key") && key.isNull())
            key = value;
        else if (is("Sec-WebSocket-Version") && !hasVersion) {
            webSocketVersion = value;
            hasVersion = true;
        }
    }

    if (!listHolds(upgrade, "websocket") || !listHolds(connection, "upgrade"))
        return refuse(400, "not a WebSocket upgrade");
    if (!hasVersion)
        return refuse(400, "no Sec-WebSocket-Version");
    if (webSocketVersion != "13")
        return refuse(426, "a WebSocket version other than 13", "Sec-WebSocket-Version: 13\r\n");
    const auto decodedKey = QByteArray::fromBase64Encoding(key.toByteArray(),
                                                           QByteArray::AbortOnBase64DecodingErrors);
    if (!decodedKey || decodedKey.decoded.size() != 16)
        return refuse(400, "no valid Sec-WebSocket-Key");
    if (host.isEmpty())
        return refuse(400, "no Host");
    const QUrl url(QString::fromLatin1((secure ? "wss://" : "ws://") + host.toByteArray()
                                       + (target.startsWith('?') ? "/" : "")
                                       + target.toByteArray()),
                   QUrl::StrictMode);
    if (!url.isValid() || url.host().isEmpty() || !url.userInfo().isEmpty())
        return refuse(400, "an invalid Host or request target");

    Upgrade accepted;
    accepted.status = 101;
    accepted.request = HandshakeRequest(url, headers, peer);
    if (accepted.request.subprotocols().contains(subprotocol))
        accepted.subprotocol = QString::fromLatin1(subprotocol);
    accepted.origin = QString::fromUtf8(accepted.request.header("Origin"));
    QCryptographicHash sha1(QCryptographicHash::Sha1);
    sha1.addData(key);
    sha1.addData(AcceptGuid);
    const QByteArray acceptKey = sha1.result().toBase64();
    accepted.response = "HTTP/1.1 101 Switching Protocols\r\n"
                        "Upgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: "
                        + acceptKey + "\r\n";
    if (!accepted.subprotocol.isEmpty())
        accepted.response += "Sec-WebSocket-Protocol: " + subprotocol.toByteArray() + "\r\n";
    accepted.response += "\r\n";
    return accepted;
}

} // namespace QtNotif
