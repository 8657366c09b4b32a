// Upgrade, the server's side of the WebSocket opening handshake (RFC 6455, section 4.2): the
// answer to valid requests, what the authenticator then sees, and the HTTP error of each kind
// of bad request.
#include "upgrade_p.h"

#include <QtTest/QTest>

using namespace QtNotif;

namespace {

const QHostAddress Peer(QStringLiteral("127.0.0.2"));
constexpr QByteArrayView Subprotocol = "qtnotif.v1";

// The request of RFC 6455, 1.3, with its key, whose answer the RFC gives.
QByteArray request(const QByteArray &extraHeaders = {}, const QByteArray &target = "/chat")
{
    return "GET " + target
           + " HTTP/1.1\r\n"
             "Host: server.example.com\r\n"
             "Upgrade: websocket\r\n"
             "Connection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n"
           + extraHeaders + "\r\n";
}

Upgrade read(const QByteArray &bytes, bool secure = false)
{
    return Upgrade::read(bytes, secure, Peer, Subprotocol);
}

} // namespace

class tst_Upgrade : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void answerOfTheRfc();
    void subprotocol_data();
    void subprotocol();
    void whatTheAuthenticatorSees();
    void secureUrl();
    void queryWithoutAPath();
    void headersInAnyCase();
    void refused_data();
    void refused();
};

void tst_Upgrade::answerOfTheRfc()
{
    const Upgrade upgrade = read(request());
    QCOMPARE(upgrade.status, 101);
    QVERIFY(upgrade.error.isEmpty());
    QCOMPARE(upgrade.response, QByteArray("HTTP/1.1 101 Switching Protocols\r\n"
                                          "Upgrade: websocket\r\n"
                                          "Connection: Upgrade\r\n"
                                          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                          "\r\n"));
    QVERIFY(upgrade.subprotocol.isEmpty());
}

void tst_Upgrade::subprotocol_data()
{
    QTest::addColumn<QByteArray>("headers");
    QTest::addColumn<bool>("chosen");
    QTest::addRow("offered alone") << QByteArray("Sec-WebSocket-Protocol: qtnotif.v1\r\n") << true;
    QTest::addRow("among others") << QByteArray(
            "Sec-WebSocket-Protocol: chat, qtnotif.v1 , superchat\r\n")
                                  << true;
    QTest::addRow("on a second line")
            << QByteArray("Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: qtnotif.v1\r\n")
            << true;
    QTest::addRow("others only") << QByteArray("Sec-WebSocket-Protocol: chat, qtnotif.v2\r\n")
                                 << false;
    QTest::addRow("none") << QByteArray() << false;
}

void tst_Upgrade::subprotocol()
{
    QFETCH(QByteArray, headers);
    QFETCH(bool, chosen);
    const Upgrade upgrade = read(request(headers));
    QCOMPARE(upgrade.status, 101);
    QCOMPARE(upgrade.subprotocol, chosen ? QString("qtnotif.v1") : QString());
    QCOMPARE(upgrade.response.contains("\r\nSec-WebSocket-Protocol: qtnotif.v1\r\n"), chosen);
    QVERIFY(upgrade.response.endsWith("\r\n\r\n"));
}

void tst_Upgrade::whatTheAuthenticatorSees()
{
    const Upgrade upgrade = read(request("Origin: https://app.example.com\r\n"
                                         "Authorization: Bearer abc.def\r\n"
                                         "Cookie: a=1; session=xyz\r\n"
                                         "X-Empty:\r\n"
                                         "X-Spaces:   padded value \t\r\n",
                                         "/chat/room%201?token=t%2B1&x=2"));
    QCOMPARE(upgrade.status, 101);
    const HandshakeRequest &r = upgrade.request;
    QCOMPARE(r.url().scheme(), QString("ws"));
    QCOMPARE(r.url().host(), QString("server.example.com"));
    QCOMPARE(r.url().path(), QString("/chat/room 1"));
    QCOMPARE(r.queryItem("token"), QString("t+1"));
    QCOMPARE(r.queryItem("x"), QString("2"));
    QCOMPARE(r.peerAddress(), Peer);
    QCOMPARE(r.header("origin"), QByteArray("https://app.example.com"));
    QCOMPARE(upgrade.origin, QString("https://app.example.com"));
    QCOMPARE(r.bearerToken(), QByteArray("abc.def"));
    QCOMPARE(r.cookie("session"), QByteArray("xyz"));
    QCOMPARE(r.header("X-Empty"), QByteArray(""));
    QCOMPARE(r.header("x-spaces"), QByteArray("padded value"));
    QCOMPARE(r.headers().size(), 10);
    QCOMPARE(r.headers().first().first, QByteArray("Host"));
}

void tst_Upgrade::secureUrl()
{
    const Upgrade upgrade = read(request({}, "/"), true);
    QCOMPARE(upgrade.status, 101);
    QCOMPARE(upgrade.request.url(), QUrl("wss://server.example.com/"));
    QCOMPARE(read(request({}, "/")).request.url(), QUrl("ws://server.example.com/"));
}

void tst_Upgrade::queryWithoutAPath()
{
    // QWebSocket asks for ws://host:port?token=t as "GET ?token=t".
    const Upgrade upgrade = read(request({}, "?token=t%20u"));
    QCOMPARE(upgrade.status, 101);
    QCOMPARE(upgrade.request.url().path(), QString("/"));
    QCOMPARE(upgrade.request.queryItem("token"), QString("t u"));
}

void tst_Upgrade::headersInAnyCase()
{
    // Header names and the tokens of Upgrade and Connection compare whatever their case;
    // Connection may list other tokens (Firefox sends "keep-alive, Upgrade").
    const QByteArray bytes = "GET / HTTP/1.1\r\n"
                             "host: localhost:8080\r\n"
                             "UPGRADE: WebSocket\r\n"
                             "connection: keep-alive, Upgrade\r\n"
                             "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "SEC-WEBSOCKET-VERSION: 13\r\n"
                             "\r\n";
    const Upgrade upgrade = read(bytes);
    QCOMPARE(upgrade.status, 101);
    QVERIFY(upgrade.response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    QCOMPARE(upgrade.request.url(), QUrl("ws://localhost:8080/"));
}

void tst_Upgrade::refused_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<int>("status");
    QTest::addColumn<QByteArray>("header"); // one the answer must hold

    QByteArray r = request();
    const auto without = [&r](const char *line) {
        QByteArray bytes = r;
        bytes.replace(line, "");
        return bytes;
    };
    const auto replaced = [&r](const char *from, const char *to) {
        QByteArray bytes = r;
        bytes.replace(from, to);
        return bytes;
    };
    QTest::addRow("unfinished") << r.chopped(2) << 400 << QByteArray();
    QTest::addRow("plain HTTP") << QByteArray("GET / HTTP/1.1\r\nHost: a\r\n\r\n") << 400
                                << QByteArray();
    QTest::addRow("POST") << replaced("GET", "POST") << 405 << QByteArray("Allow: GET\r\n");
    QTest::addRow("HTTP/1.0") << replaced("HTTP/1.1", "HTTP/1.0") << 505 << QByteArray();
    QTest::addRow("HTTP/2") << replaced("HTTP/1.1", "HTTP/2") << 505 << QByteArray();
    QTest::addRow("no version") << replaced(" HTTP/1.1", "") << 400 << QByteArray();
    QTest::addRow("not HTTP") << replaced("HTTP/1.1", "FTP/1.1") << 400 << QByteArray();
    QTest::addRow("two spaces in the target") << replaced("/chat", "/a b") << 400 << QByteArray();
    QTest::addRow("absolute URL") << replaced("/chat", "http://a/chat") << 400 << QByteArray();
    QTest::addRow("asterisk") << replaced("/chat", "*") << 400 << QByteArray();
    QTest::addRow("no Upgrade") << without("Upgrade: websocket\r\n") << 400 << QByteArray();
    QTest::addRow("Upgrade: h2c") << replaced("Upgrade: websocket", "Upgrade: h2c") << 400
                                  << QByteArray();
    QTest::addRow("no Connection") << without("Connection: Upgrade\r\n") << 400 << QByteArray();
    QTest::addRow("Connection: close")
            << replaced("Connection: Upgrade", "Connection: close") << 400 << QByteArray();
    QTest::addRow("no Sec-WebSocket-Version")
            << without("Sec-WebSocket-Version: 13\r\n") << 400 << QByteArray();
    QTest::addRow("version 8") << replaced("Version: 13", "Version: 8") << 426
                               << QByteArray("Sec-WebSocket-Version: 13\r\n");
    QTest::addRow("no key") << without("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n") << 400
                            << QByteArray();
    QTest::addRow("key not base64")
            << replaced("dGhlIHNhbXBsZSBub25jZQ==", "not base64!") << 400 << QByteArray();
    QTest::addRow("key of 15 bytes")
            << replaced("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25j") << 400 << QByteArray();
    QTest::addRow("no Host") << without("Host: server.example.com\r\n") << 400 << QByteArray();
    QTest::addRow("empty Host") << replaced("Host: server.example.com", "Host:") << 400
                                << QByteArray();
    QTest::addRow("Host with user info")
            << replaced("Host: server.example.com", "Host: me@server.example.com") << 400
            << QByteArray();
    QTest::addRow("Host with a path")
            << replaced("Host: server.example.com", "Host: server.example.com/x") << 101
            << QByteArray();
    QTest::addRow("folded header line")
            << replaced("Connection: Upgrade\r\n", "Connection:\r\n Upgrade\r\n") << 400
            << QByteArray();
    QTest::addRow("line without a colon")
            << replaced("Connection: Upgrade", "Connection Upgrade") << 400 << QByteArray();
    QTest::addRow("space before the colon")
            << replaced("Connection: Upgrade", "Connection : Upgrade") << 400 << QByteArray();
    QTest::addRow("NUL in a value") << request(QByteArray("X: a\0b\r\n", 8)) << 400 << QByteArray();
    QTest::addRow("bare LF in a value") << request("X: a\nb\r\n") << 400 << QByteArray();
    QTest::addRow("tab in a value") << request("X: a\tb\r\n") << 101 << QByteArray();
}

void tst_Upgrade::refused()
{
    QFETCH(QByteArray, bytes);
    QFETCH(int, status);
    QFETCH(QByteArray, header);
    const Upgrade upgrade = read(bytes);
    QCOMPARE(upgrade.status, status);
    if (status == 101) {
        QVERIFY(upgrade.error.isEmpty());
        return;
    }
    QVERIFY(!upgrade.error.isEmpty());
    QVERIFY(upgrade.response.startsWith(
            QByteArray("HTTP/1.1 " + QByteArray::number(status) + ' ')));
    QVERIFY(upgrade.response.endsWith("\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
    if (!header.isEmpty())
        QVERIFY(upgrade.response.contains(QByteArray("\r\n" + header)));
}

QTEST_APPLESS_MAIN(tst_Upgrade)

#include "tst_upgrade.moc"
