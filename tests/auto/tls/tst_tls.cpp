// wss:// (Server::setSslConfiguration(), Client::setSslConfiguration()) and the Origin
// allow-list, over real sockets on loopback. initTestCase() makes a throwaway PKI with the openssl
// command line in a temporary directory: a CA; server certificates it signs for 127.0.0.1 and
// localhost (valid, and expired), and for another host; a client certificate; an intermediate
// CA and an RSA server certificate it signs; and an unrelated second CA.
#include "rawwebsocket.h"
#include "server_p.h"
#include "tcpsegments.h"
#include "testmain.h"
#include "testpeer.h"

#include <QtNotif/client.h>
#include <QtNotif/notifier.h>
#include <QtNotif/server.h>

#include <QtCore/QFile>
#include <QtCore/QProcess>
#include <QtCore/QStandardPaths>
#include <QtCore/QTemporaryDir>
#include <QtCore/QtEndian>
#include <QtNetwork/QSslCertificate>
#include <QtNetwork/QSslCipher>
#include <QtNetwork/QSslEllipticCurve>
#include <QtNetwork/QSslKey>
#include <QtNetwork/QSslSocket>
#include <QtNetwork/QTcpServer>
#include <QtNetwork/QTcpSocket>
#include <QtTest/QSignalSpy>
#include <QtTest/QTest>

#ifdef QTNOTIF_QML_IMPORT_DIR
#include <QtQml/QQmlComponent>
#include <QtQml/QQmlEngine>
#endif

#include <memory>

#include <sys/socket.h>

using namespace QtNotif;
using namespace std::chrono_literals;

using State = Client::State;
using ChatNotifier = SimpleNotifier<QString, QString>;

class tst_Tls : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();

    void serverUrlSaysWss();
    void unusableConfigurationsAreRefused();
    void settingsSurviveTheSwitchToTls();
    void handshakeTimeoutCoversTls();
    void closeDropsTlsHandshakesInProgress();
    void listenAndNotifyOverTls();
    void framesBeforeTheWelcome();
    void sessionTicketsGoWithTheWelcome_data();
    void sessionTicketsGoWithTheWelcome();
    void untrustedServerIsAnSslError_data();
    void untrustedServerIsAnSslError();
    void failingHandshakesDoNotDisturbOthers();
    void plainClientToTlsServerFailsCleanly();
    void renewedCertificateTakesEffectWithoutRestart();
    void chainWithAnIntermediateAndAnRsaKey();
    void clientCertificates();
    void queryPeerAsksForNoCertificate();
    void configurationsTheServerCannotServe();
    void protocolsAndCiphersAreHonoured();
    void messagesLargerThanATlsRecord();
    void brokenTlsRecordsEndThatConnectionOnly();
    void aClientThatDoesNotReadIsClosed();
    void closeSendsCloseNotify();
    void origins_data();
    void origins();
    void clientLibrarySendsNoOrigin();
    void allowedOriginWithAPathIsWarnedAbout();
    void qmlClientCaCertificates();

private:
    QString path(const QString &name) const { return m_dir.filePath(name); }
    bool openssl(const QStringList &arguments);
    bool sign(const QString &request, const QString &extensions, const QString &ca,
              const QString &days, const QString &certificate);
    // The server side of wss:// with the named certificate (server.key is its key).
    QSslConfiguration serverTls(const QString &certificate) const;
    // A client's configuration trusting the named CA only; an empty name keeps the system's CAs.
    QSslConfiguration clientTls(const QString &ca) const;
    // A Client of the server, trusting the named CA, with short reconnect delays; not open.
    std::unique_ptr<Client> makeClient(const QString &ca = QStringLiteral("ca"));
    bool openAndWait(Client &client);
    // Opens client and waits for its first error: that error, or NoError after 5 s without one.
    Client::Error openAndFail(Client &client);
    // A raw WebSocket client of the server over TLS with the client configuration tls, once
    // encrypted (not upgraded); null when the TLS handshake failed.
    std::unique_ptr<RawWebSocket> connectRaw(const QSslConfiguration &tls);
    // A raw WebSocket client over TLS, upgraded, trusting the test CA, listening on key of chat.
    std::unique_ptr<RawWebSocket> openRawListening(const QString &key);

    QString m_openssl;
    QTemporaryDir m_dir;
    std::unique_ptr<Server> server;
    ChatNotifier *chat = nullptr;
};

bool tst_Tls::openssl(const QStringList &arguments)
{
    QProcess process;
    process.setWorkingDirectory(m_dir.path());
    process.start(m_openssl, arguments);
    if (!process.waitForFinished(60000) || process.exitStatus() != QProcess::NormalExit
        || process.exitCode() != 0) {
        qWarning().noquote() << "openssl" << arguments.join(u' ')
                             << "failed:" << process.readAllStandardError();
        return false;
    }
    return true;
}

bool tst_Tls::sign(const QString &request, const QString &extensions, const QString &ca,
                   const QString &days, const QString &certificate)
{
    return openssl({ "x509", "-req", "-in", request, "-CA", ca + ".pem", "-CAkey", ca + ".key",
                     "-CAcreateserial", "-days", days, "-extfile", extensions, "-out",
                     certificate + ".pem" });
}

void tst_Tls::initTestCase()
{
    m_openssl = QStandardPaths::findExecutable("openssl");
    if (m_openssl.isEmpty())
        QFAIL("the openssl command is needed to make test certificates (Debian package openssl)");
    QVERIFY(m_dir.isValid());
    QVERIFY2(QSslSocket::supportsSsl(), "Qt has no TLS backend");

    const QStringList ecKey{ "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                             "-nodes" };
    for (const QString ca : { "ca", "other-ca" }) {
        QVERIFY(openssl(QStringList{ "req", "-x509" } + ecKey
                        + QStringList{ "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
                                       "-subj", "/CN=qtnotif test " + ca, "-addext",
                                       "basicConstraints=critical,CA:TRUE", "-addext",
                                       "keyUsage=critical,keyCertSign,cRLSign" }));
    }
    for (const QString name : { "server", "client" }) {
        QVERIFY(openssl(QStringList{ "req", "-new" } + ecKey
                        + QStringList{ "-keyout", name + ".key", "-out", name + ".csr", "-subj",
                                       "/CN=" + name }));
    }
    const QList<QPair<QString, QByteArray>> extensions{
        { "server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                        "extendedKeyUsage=serverAuth\n" },
        { "elsewhere.ext", "subjectAltName=DNS:elsewhere.example\nextendedKeyUsage=serverAuth\n" },
        { "client.ext", "extendedKeyUsage=clientAuth\n" },
        { "intermediate.ext", "basicConstraints=critical,CA:TRUE,pathlen:0\n"
                              "keyUsage=critical,keyCertSign,cRLSign\n" },
    };
    for (const auto &[name, text] : extensions) {
        QFile file(path(name));
        QVERIFY(file.open(QIODevice::WriteOnly));
        QVERIFY(file.write(text) == text.size());
    }
    QVERIFY(sign("server.csr", "server.ext", "ca", "1", "server"));
    QVERIFY(sign("server.csr", "elsewhere.ext", "ca", "1", "elsewhere"));
    // A negative validity puts notAfter a day before now: expired.
    QVERIFY(sign("server.csr", "server.ext", "ca", "-1", "expired"));
    QVERIFY(sign("client.csr", "client.ext", "ca", "1", "client"));
    // An intermediate CA under ca, and an RSA server certificate it signs: a chain, as public
    // CAs issue them.
    QVERIFY(openssl(QStringList{ "req", "-new" } + ecKey
                    + QStringList{ "-keyout", "intermediate.key", "-out", "intermediate.csr",
                                   "-subj", "/CN=qtnotif test intermediate" }));
    QVERIFY(sign("intermediate.csr", "intermediate.ext", "ca", "1", "intermediate"));
    QVERIFY(openssl({ "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "chained.key",
                      "-out", "chained.csr", "-subj", "/CN=chained" }));
    QVERIFY(sign("chained.csr", "server.ext", "intermediate", "1", "chained"));
}

QSslConfiguration tst_Tls::serverTls(const QString &certificate) const
{
    QFile key(path("server.key"));
    if (!key.open(QIODevice::ReadOnly))
        qWarning("cannot read server.key");
    QSslConfiguration tls = QSslConfiguration::defaultConfiguration();
    tls.setLocalCertificate(QSslCertificate::fromPath(path(certificate + ".pem")).value(0));
    tls.setPrivateKey(QSslKey(&key, QSsl::Ec));
    return tls;
}

QSslConfiguration tst_Tls::clientTls(const QString &ca) const
{
    QSslConfiguration tls = QSslConfiguration::defaultConfiguration();
    if (!ca.isEmpty())
        tls.setCaCertificates(QSslCertificate::fromPath(path(ca + ".pem")));
    return tls;
}

void tst_Tls::init()
{
    server = std::make_unique<Server>();
    chat = new ChatNotifier(server.get(), "chat");
    QVERIFY(server->setSslConfiguration(serverTls("server")));
    QVERIFY(server->listen(QHostAddress::LocalHost, 0));
}

void tst_Tls::cleanup()
{
    server.reset();
}

std::unique_ptr<Client> tst_Tls::makeClient(const QString &ca)
{
    auto client = std::make_unique<Client>();
    client->setUrl(server->serverUrl());
    client->setSslConfiguration(clientTls(ca));
    client->setReconnectDelays(20ms, 200ms);
    return client;
}

bool tst_Tls::openAndWait(Client &client)
{
    client.open();
    return QTest::qWaitFor([&] { return client.state() == State::Connected; }, 5000);
}

Client::Error tst_Tls::openAndFail(Client &client)
{
    QSignalSpy errors(&client, &Client::errorOccurred);
    client.open();
    return QTest::qWaitFor([&] { return !errors.isEmpty(); }, 5000) ? client.error()
                                                                    : Client::Error::NoError;
}

std::unique_ptr<RawWebSocket> tst_Tls::connectRaw(const QSslConfiguration &tls)
{
    auto raw = std::make_unique<RawWebSocket>();
    if (!raw->connectToServerEncrypted(server->serverPort(), tls))
        return nullptr;
    return raw;
}

std::unique_ptr<RawWebSocket> tst_Tls::openRawListening(const QString &key)
{
    auto raw = connectRaw(clientTls("ca"));
    if (!raw)
        return nullptr;
    raw->write(RawWebSocket::handshakeRequest()
               + RawWebSocket::text(R"({"op":"listen","id":1,"notifier":"chat","key":")"
                                    + key.toUtf8() + R"("})"));
    if (!raw->waitForUpgrade() || !raw->waitForMessages("ack", 1))
        return nullptr;
    return raw;
}

void tst_Tls::serverUrlSaysWss()
{
    QCOMPARE(server->serverUrl().scheme(), QString("wss"));
    QCOMPARE(server->serverUrl().port(), int(server->serverPort()));
    QVERIFY(!server->sslConfiguration().isNull());

    Server plain;
    QVERIFY(plain.sslConfiguration().isNull());
    QVERIFY(plain.listen());
    QCOMPARE(plain.serverUrl().scheme(), QString("ws"));

    // A null configuration, once closed, serves ws:// again.
    server->close();
    QVERIFY(server->setSslConfiguration(QSslConfiguration()));
    QVERIFY(server->listen());
    QCOMPARE(server->serverUrl().scheme(), QString("ws"));
    auto client = makeClient();
    client->setUrl(server->serverUrl());
    QVERIFY(openAndWait(*client));
}

void tst_Tls::unusableConfigurationsAreRefused()
{
    // ws:// and wss:// are fixed while listening: the server keeps serving wss://.
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("ignored a TLS configuration: .*close"));
    QVERIFY(!server->setSslConfiguration(QSslConfiguration()));
    QVERIFY(server->errorString().contains("close()"));
    QCOMPARE(server->serverUrl().scheme(), QString("wss"));
    QVERIFY(openAndWait(*makeClient()));

    Server other;
    QSslConfiguration noKey = serverTls("server");
    noKey.setPrivateKey(QSslKey());
    QSslConfiguration noCertificate = serverTls("server");
    noCertificate.setLocalCertificate(QSslCertificate());
    for (const QSslConfiguration &tls : { noKey, noCertificate }) {
        QTest::ignoreMessage(QtWarningMsg, QRegularExpression("needs a certificate and its"));
        QVERIFY(!other.setSslConfiguration(tls));
        QVERIFY(other.sslConfiguration().isNull());
    }
    QVERIFY(other.listen());
    QCOMPARE(other.serverUrl().scheme(), QString("ws"));
}

void tst_Tls::settingsSurviveTheSwitchToTls()
{
    // Settings made on a ws:// server carry over to the wss:// one that replaces it.
    Server tlsServer;
    tlsServer.setHandshakeTimeout(200ms);
    QVERIFY(tlsServer.setSslConfiguration(serverTls("server")));
    QCOMPARE(tlsServer.handshakeTimeout(), 200ms);
    QVERIFY(tlsServer.listen());

    // The subprotocol is still selected.
    TestPeer peer;
    peer.socket.setSslConfiguration(clientTls("ca"));
    QVERIFY(peer.open(tlsServer.serverUrl()));
    QCOMPARE(peer.socket.subprotocol(), QString("qtnotif.v1"));

    // The handshake timeout too (Qt's TLS server would wait 5 s by itself).
    QTcpSocket silent;
    silent.connectToHost(QHostAddress::LocalHost, tlsServer.serverPort());
    QVERIFY(silent.waitForConnected(5000));
    QTRY_COMPARE_WITH_TIMEOUT(silent.state(), QAbstractSocket::UnconnectedState, 3000);
    QCOMPARE(tlsServer.connectionCount(), 1);
}

void tst_Tls::handshakeTimeoutCoversTls()
{
    server->setHandshakeTimeout(200ms);
    // A TCP connection that never starts TLS...
    QTcpSocket silent;
    silent.connectToHost(QHostAddress::LocalHost, server->serverPort());
    QVERIFY(silent.waitForConnected(5000));
    // ...and one that completes TLS but never sends its WebSocket handshake.
    QSslSocket encrypted;
    QSignalSpy handshaken(&encrypted, &QSslSocket::encrypted);
    encrypted.setSslConfiguration(clientTls("ca"));
    encrypted.connectToHostEncrypted("127.0.0.1", server->serverPort());
    // Qt's TLS server alone would wait 5 s, its WebSocket server 10 s.
    QTRY_COMPARE_WITH_TIMEOUT(silent.state(), QAbstractSocket::UnconnectedState, 3000);
    QTRY_COMPARE_WITH_TIMEOUT(encrypted.state(), QAbstractSocket::UnconnectedState, 3000);
    QCOMPARE(handshaken.size(), 1);
    QCOMPARE(server->connectionCount(), 0);
}

void tst_Tls::closeDropsTlsHandshakesInProgress()
{
    // A TCP connection that has not finished its TLS handshake when the server closes is
    // dropped then, not at its handshake timeout.
    QTcpSocket tcp;
    tcp.connectToHost(QHostAddress::LocalHost, server->serverPort());
    QVERIFY(tcp.waitForConnected(5000));
    const ServerPrivate *d = ServerPrivate::get(server.get());
    QTRY_COMPARE(d->handshakesInProgress(), 1);
    server->close();
    QCOMPARE(d->handshakesInProgress(), 0);
    QTRY_COMPARE(tcp.state(), QAbstractSocket::UnconnectedState);
}

void tst_Tls::listenAndNotifyOverTls()
{
    for (const QString host : { "127.0.0.1", "localhost" }) {
        auto client = makeClient();
        QUrl url = server->serverUrl();
        url.setHost(host);
        client->setUrl(url);
        QVERIFY2(openAndWait(*client), qPrintable(client->errorString()));
        QCOMPARE(client->error(), Client::Error::NoError);
        ClientNotifier *notifier = client->notifier("chat");
        QSignalSpy events(notifier, &ClientNotifier::clientEvent);
        notifier->listen(host);
        QTRY_COMPARE(chat->localListenerCount(host), 1);
        chat->notify(host, "hello over TLS");
        QTRY_COMPARE(events.size(), 1);
        QCOMPARE(events.at(0).at(1).toString(), QString("hello over TLS"));
    }
}

void tst_Tls::framesBeforeTheWelcome()
{
    // As over ws:// (tst_badinput): frames in the same TLS records as the upgrade request are
    // answered after the welcome, in order.
    using Raw = RawWebSocket;
    RawWebSocket raw;
    QVERIFY(raw.connectToServerEncrypted(server->serverPort(), clientTls("ca")));
    raw.write(Raw::handshakeRequest()
              + Raw::text(R"({"op":"listen","id":1,"notifier":"chat","key":"early"})")
              + Raw::text("garbage") + Raw::frame(Raw::Ping, "early"));
    QVERIFY(raw.waitForUpgrade());
    QVERIFY(raw.waitForMessages("error", 1));
    QCOMPARE(raw.messages.size(), 3);
    QCOMPARE(raw.messages.at(0).value("op").toString(), QString("welcome"));
    QCOMPARE(raw.messages.at(1).value("op").toString(), QString("ack"));
    QCOMPARE(raw.messages.at(2).value("code").toString(), QString("invalid_json"));
    QTRY_COMPARE(raw.pongs.size(), 1);
    QCOMPARE(chat->localListenerCount("early"), 1);
}

void tst_Tls::sessionTicketsGoWithTheWelcome_data()
{
    QTest::addColumn<bool>("ticketsDisabled"); // QSsl::SslOptionDisableSessionTickets
    QTest::addColumn<int>("tickets");

    QTest::addRow("by default") << false << 1;
    QTest::addRow("tickets disabled") << true << 0;
}

void tst_Tls::sessionTicketsGoWithTheWelcome()
{
#ifndef Q_OS_LINUX
    QSKIP("TCP_INFO's count of segments is Linux's");
#else
    // One TLS 1.3 session ticket, or none, and it waits for the 101 and the welcome to go with
    // them: the client receives two writes of the server, the handshake's flight and that one.
    QFETCH(bool, ticketsDisabled);
    QFETCH(int, tickets);
    QSslConfiguration tls = serverTls("server");
    tls.setSslOption(QSsl::SslOptionDisableSessionTickets, ticketsDisabled);
    QVERIFY(server->setSslConfiguration(tls));
    QSslConfiguration keepsSessions = clientTls("ca");
    keepsSessions.setSslOption(QSsl::SslOptionDisableSessionPersistence, false);
    RawWebSocket raw;
    QSignalSpy ticketsReceived(&raw.socket, &QSslSocket::newSessionTicketReceived);
    QVERIFY(raw.connectToServerEncrypted(server->serverPort(), keepsSessions));
    QCOMPARE(raw.socket.sessionProtocol(), QSsl::TlsV1_3);
    raw.write(RawWebSocket::handshakeRequest());
    QVERIFY(raw.waitForUpgrade());
    QVERIFY(raw.waitForMessages("welcome", 1));
    QCOMPARE(ticketsReceived.size(), tickets);
    QCOMPARE(tcpDataSegmentsReceived(raw.socket.socketDescriptor()), 2);
#endif
}

void tst_Tls::untrustedServerIsAnSslError_data()
{
    QTest::addColumn<QString>("certificate"); // the server's
    QTest::addColumn<QString>("ca");          // the one the client trusts; empty: the system's
    QTest::addColumn<QString>("expected");    // in the client's errorString()

    QTest::addRow("system CAs only") << "server"
                                     << ""
                                     << "issuer certificate";
    QTest::addRow("unrelated CA") << "server"
                                  << "other-ca"
                                  << "issuer certificate";
    QTest::addRow("wrong host name") << "elsewhere"
                                     << "ca"
                                     << "host name did not match";
    QTest::addRow("expired") << "expired"
                             << "ca"
                             << "expired";
}

void tst_Tls::untrustedServerIsAnSslError()
{
    QFETCH(QString, certificate);
    QFETCH(QString, ca);
    QFETCH(QString, expected);
    QVERIFY(server->setSslConfiguration(serverTls(certificate)));
    QSignalSpy authenticated(server.get(), &Server::clientConnected);
    QSignalSpy refused(server.get(), &Server::clientRefused);

    auto client = makeClient(ca);
    QSignalSpy errors(client.get(), &Client::errorOccurred);
    client->open();
    QTRY_VERIFY(!errors.isEmpty());
    QCOMPARE(errors.first().first().value<Client::Error>(), Client::Error::SslError);
    QCOMPARE(client->error(), Client::Error::SslError);
    QVERIFY2(client->errorString().contains(expected, Qt::CaseInsensitive),
             qPrintable(client->errorString()));
    // Retried with backoff, like any failed connection.
    QCOMPARE(client->state(), State::Reconnecting);
    QTRY_VERIFY(errors.size() >= 2);
    QCOMPARE(errors.last().first().value<Client::Error>(), Client::Error::SslError);
    // The server saw no WebSocket handshake: no connection, no refusal.
    QCOMPARE(server->connectionCount(), 0);
    QCOMPARE(authenticated.size(), 0);
    QCOMPARE(refused.size(), 0);
}

void tst_Tls::failingHandshakesDoNotDisturbOthers()
{
    auto trusting = makeClient();
    QVERIFY(openAndWait(*trusting));
    ClientNotifier *notifier = trusting->notifier("chat");
    QSignalSpy events(notifier, &ClientNotifier::clientEvent);
    notifier->listen("lobby");
    QTRY_COMPARE(chat->localListenerCount("lobby"), 1);

    // Clients that fail TLS again and again, and one that speaks plain ws:// to the wss:// port.
    auto untrusting = makeClient(QString());
    auto plain = makeClient();
    QUrl url = server->serverUrl();
    url.setScheme("ws");
    plain->setUrl(url);
    QSignalSpy untrustingErrors(untrusting.get(), &Client::errorOccurred);
    QSignalSpy plainErrors(plain.get(), &Client::errorOccurred);
    untrusting->open();
    plain->open();
    QTRY_VERIFY(untrustingErrors.size() >= 3 && plainErrors.size() >= 3);

    QCOMPARE(trusting->state(), State::Connected);
    chat->notify("lobby", "still here");
    QTRY_COMPARE(events.size(), 1);
    QCOMPARE(server->connectionCount(), 1);
    // A new client is served as well.
    QVERIFY(openAndWait(*makeClient()));
}

void tst_Tls::plainClientToTlsServerFailsCleanly()
{
    auto client = makeClient();
    QUrl url = server->serverUrl();
    url.setScheme("ws");
    client->setUrl(url);
    QCOMPARE(openAndFail(*client), Client::Error::ConnectionError);
    QCOMPARE(client->state(), State::Reconnecting);
    QCOMPARE(server->connectionCount(), 0);
}

void tst_Tls::renewedCertificateTakesEffectWithoutRestart()
{
    auto steady = makeClient();
    QVERIFY(openAndWait(*steady));

    // The certificate ran out: new clients fail, and retry.
    QVERIFY(server->setSslConfiguration(serverTls("expired")));
    auto client = makeClient();
    QCOMPARE(openAndFail(*client), Client::Error::SslError);
    QCOMPARE(client->state(), State::Reconnecting);

    // Renewed on the listening server: the next attempt is welcomed, nothing changed on the
    // client; the connection made with the old certificate stays.
    QVERIFY(server->setSslConfiguration(serverTls("server")));
    QTRY_COMPARE(client->state(), State::Connected);
    QCOMPARE(client->error(), Client::Error::NoError);
    QCOMPARE(steady->state(), State::Connected);
    QCOMPARE(server->connectionCount(), 2);
}

void tst_Tls::chainWithAnIntermediateAndAnRsaKey()
{
    // The server sends its certificate and the intermediate: a client that trusts only the
    // root CA verifies the chain.
    QSslConfiguration tls = QSslConfiguration::defaultConfiguration();
    tls.setLocalCertificateChain(QSslCertificate::fromPath(path("chained.pem"))
                                 + QSslCertificate::fromPath(path("intermediate.pem")));
    QFile key(path("chained.key"));
    QVERIFY(key.open(QIODevice::ReadOnly));
    tls.setPrivateKey(QSslKey(&key, QSsl::Rsa));
    QVERIFY2(server->setSslConfiguration(tls), qPrintable(server->errorString()));
    auto client = makeClient();
    QVERIFY2(openAndWait(*client), qPrintable(client->errorString()));

    // Without the intermediate, the same client cannot.
    tls.setLocalCertificateChain(QSslCertificate::fromPath(path("chained.pem")));
    QVERIFY(server->setSslConfiguration(tls));
    QCOMPARE(openAndFail(*makeClient()), Client::Error::SslError);
}

void tst_Tls::clientCertificates()
{
    QSslConfiguration tls = serverTls("server");
    tls.setPeerVerifyMode(QSslSocket::VerifyPeer);
    tls.setCaCertificates(QSslCertificate::fromPath(path("ca.pem")));
    QVERIFY(server->setSslConfiguration(tls));

    // Without a certificate: never welcomed.
    auto anonymous = makeClient();
    const Client::Error error = openAndFail(*anonymous);
    QVERIFY2(error == Client::Error::SslError || error == Client::Error::ConnectionError,
             qPrintable(anonymous->errorString()));
    QVERIFY(anonymous->state() != State::Connected);
    anonymous->close();
    QCOMPARE(server->connectionCount(), 0);

    // With one from the CA: welcomed.
    auto alice = makeClient();
    QSslConfiguration aliceTls = alice->sslConfiguration();
    aliceTls.setLocalCertificate(QSslCertificate::fromPath(path("client.pem")).value(0));
    QFile key(path("client.key"));
    QVERIFY(key.open(QIODevice::ReadOnly));
    aliceTls.setPrivateKey(QSslKey(&key, QSsl::Ec));
    alice->setSslConfiguration(aliceTls);
    QVERIFY2(openAndWait(*alice), qPrintable(alice->errorString()));
}

void tst_Tls::queryPeerAsksForNoCertificate()
{
    // QueryPeer asks for a certificate and takes any, or none.
    QSslConfiguration tls = serverTls("server");
    tls.setPeerVerifyMode(QSslSocket::QueryPeer);
    QVERIFY(server->setSslConfiguration(tls));
    QVERIFY(openAndWait(*makeClient()));
    QCOMPARE(server->connectionCount(), 1);
}

void tst_Tls::configurationsTheServerCannotServe()
{
    Server other;
    const auto refused = [&other](const QSslConfiguration &tls, const char *because) {
        QTest::ignoreMessage(QtWarningMsg, QRegularExpression(because));
        if (other.setSslConfiguration(tls))
            return false;
        return other.errorString().contains(QRegularExpression(because))
               && other.sslConfiguration().isNull();
    };

    QSslConfiguration oldProtocol = serverTls("server");
    oldProtocol.setProtocol(QSsl::DtlsV1_2OrLater);
    QVERIFY(refused(oldProtocol, "TLS 1.2 and 1.3 only"));

    // The client's key with the server's certificate.
    QSslConfiguration mismatched = serverTls("server");
    QFile clientKey(path("client.key"));
    QVERIFY(clientKey.open(QIODevice::ReadOnly));
    mismatched.setPrivateKey(QSslKey(&clientKey, QSsl::Ec));
    QVERIFY(refused(mismatched, "does not match the certificate"));

    // TLS 1.2 with TLS 1.3's ciphers only.
    QSslConfiguration noCipher = serverTls("server");
    noCipher.setProtocol(QSsl::TlsV1_2);
    noCipher.setCiphers({ QSslCipher("TLS_AES_128_GCM_SHA256") });
    QVERIFY(!noCipher.ciphers().value(0).isNull());
    QVERIFY(refused(noCipher, "none of the configuration's ciphers serves its protocol"));

    // Every refusal kept the server as it was: ws://.
    QVERIFY(other.listen());
    QCOMPARE(other.serverUrl().scheme(), QString("ws"));
}

void tst_Tls::protocolsAndCiphersAreHonoured()
{
    const auto connectWith
            = [this](QSsl::SslProtocol protocol, const QList<QSslEllipticCurve> &curves = {}) {
                  QSslConfiguration tls = clientTls("ca");
                  tls.setProtocol(protocol);
                  if (!curves.isEmpty())
                      tls.setEllipticCurves(curves);
                  return connectRaw(tls);
              };

    QSslConfiguration tls13 = serverTls("server");
    tls13.setProtocol(QSsl::TlsV1_3OrLater);
    QVERIFY(server->setSslConfiguration(tls13));
    QVERIFY(!connectWith(QSsl::TlsV1_2));
    auto modern = connectWith(QSsl::TlsV1_3OrLater);
    QVERIFY(modern);
    QCOMPARE(modern->socket.sessionProtocol(), QSsl::TlsV1_3);

    // One TLS 1.2 cipher: a client that offers it gets it.
    const QSslCipher chosen("ECDHE-ECDSA-AES128-GCM-SHA256");
    QVERIFY(!chosen.isNull());
    QSslConfiguration oneCipher = serverTls("server");
    oneCipher.setProtocol(QSsl::TlsV1_2);
    oneCipher.setCiphers({ chosen });
    QVERIFY(server->setSslConfiguration(oneCipher));
    auto raw = connectWith(QSsl::TlsV1_2OrLater);
    QVERIFY(raw);
    QCOMPARE(raw->socket.sessionProtocol(), QSsl::TlsV1_2);
    QCOMPARE(raw->socket.sessionCipher().name(), chosen.name());
    raw->write(RawWebSocket::handshakeRequest());
    QVERIFY(raw->waitForUpgrade());

    // Key exchange on P-384 only: a client without it fails, one with it connects.
    const QSslEllipticCurve p256 = QSslEllipticCurve::fromShortName("prime256v1");
    const QSslEllipticCurve p384 = QSslEllipticCurve::fromShortName("secp384r1");
    QVERIFY(p256.isValid() && p384.isValid());
    QSslConfiguration oneCurve = serverTls("server");
    oneCurve.setEllipticCurves({ p384 });
    QVERIFY(server->setSslConfiguration(oneCurve));
    QVERIFY(!connectWith(QSsl::TlsV1_2OrLater, { p256 }));
    QVERIFY(connectWith(QSsl::TlsV1_2OrLater, { p256, p384 }));
}

void tst_Tls::messagesLargerThanATlsRecord()
{
    // TLS carries at most 16 KiB in a record: messages both ways span several.
    server->setMaxFrameSize(256 * 1024);
    auto raw = openRawListening("big");
    QVERIFY(raw);
    const QString notification(100 * 1024, u'n');
    chat->notify("big", notification);
    QVERIFY(raw->waitForMessages("notif", 1));
    QCOMPARE(raw->messagesOf("notif").value(0).value("data").toString(), notification);

    // A request of 200 KiB, read whole: answered, as any text that is not JSON.
    raw->sendText(QByteArray(200 * 1024, '{'));
    QVERIFY(raw->waitForMessages("error", 1));
    QCOMPARE(raw->messagesOf("error").value(0).value("code").toString(), QString("invalid_json"));
}

void tst_Tls::brokenTlsRecordsEndThatConnectionOnly()
{
    auto steady = openRawListening("room");
    QVERIFY(steady);
    auto broken = openRawListening("room");
    QVERIFY(broken);
    QCOMPARE(server->connectionCount(), 2);

    // Bytes that are no TLS record of this connection, past the client's TLS layer.
    QTest::ignoreMessage(QtInfoMsg, QRegularExpression("broke TLS"));
    const QByteArray garbage(64, '\x17');
    const qintptr descriptor = broken->socket.socketDescriptor();
    QVERIFY(descriptor >= 0);
    QCOMPARE(::send(int(descriptor), garbage.constData(), garbage.size(), MSG_NOSIGNAL),
             ssize_t(garbage.size()));
    QTRY_COMPARE(server->connectionCount(), 1);
    QTRY_VERIFY(broken->disconnected);

    chat->notify("room", "still here");
    QVERIFY(steady->waitForMessages("notif", 1));
    QCOMPARE(steady->messagesOf("notif").value(0).value("data").toString(), QString("still here"));
}

void tst_Tls::aClientThatDoesNotReadIsClosed()
{
    // What waits for a client is counted in encrypted bytes, as over ws://.
    server->setMaxSendQueue(256 * 1024);
    QSignalSpy gone(server.get(), &Server::clientDisconnected);
    auto slow = openRawListening("room");
    QVERIFY(slow);
    slow->setReading(false);
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("does not read.*closing it \\(4413\\)"));
    const QString notification(1024, u'n');
    for (int i = 0; i < 16 * 1024 && gone.isEmpty(); ++i) {
        chat->notify("room", notification);
        if (i % 64 == 0)
            QCoreApplication::processEvents();
    }
    QTRY_COMPARE(gone.size(), 1);
    QCOMPARE(server->connectionCount(), 0);
}

void tst_Tls::closeSendsCloseNotify()
{
    // The server ends TLS before TCP: a client that reads the stream itself (as OpenSSL does)
    // tells a closed connection from a truncated one by it. Seen on the wire, through a relay,
    // with TLS 1.2, whose alert records say what they are (TLS 1.3 hides their type).
    QTcpServer relay;
    QVERIFY(relay.listen(QHostAddress::LocalHost));
    QTcpSocket upstream;
    QByteArray fromServer;
    bool serverEnded = false;
    QTcpSocket *downstream = nullptr;
    connect(&relay, &QTcpServer::newConnection, this, [&] {
        downstream = relay.nextPendingConnection();
        connect(downstream, &QTcpSocket::readyRead, this,
                [&] { upstream.write(downstream->readAll()); });
        upstream.connectToHost(QHostAddress::LocalHost, server->serverPort());
    });
    connect(&upstream, &QTcpSocket::readyRead, this, [&] {
        const QByteArray bytes = upstream.readAll();
        fromServer += bytes;
        downstream->write(bytes);
    });
    connect(&upstream, &QTcpSocket::disconnected, this, [&] {
        serverEnded = true;
        downstream->disconnectFromHost();
    });

    RawWebSocket raw;
    QSslConfiguration tls = clientTls("ca");
    tls.setProtocol(QSsl::TlsV1_2);
    QVERIFY(raw.connectToServerEncrypted(relay.serverPort(), tls));
    raw.write(RawWebSocket::handshakeRequest());
    QVERIFY(raw.waitForUpgrade());
    raw.write(RawWebSocket::frame(RawWebSocket::Close, RawWebSocket::closePayload(1000)));
    QVERIFY(raw.waitForClose());
    QTRY_VERIFY(serverEnded);

    // The records the server sent: content type, version, length, then the record.
    QList<quint8> types;
    for (qsizetype at = 0; at + 5 <= fromServer.size();) {
        types.append(quint8(fromServer.at(at)));
        at += 5 + qFromBigEndian<quint16>(fromServer.constData() + at + 3);
    }
    QVERIFY(types.size() >= 3);
    constexpr quint8 Alert = 21;
    constexpr quint8 ApplicationData = 23;
    QCOMPARE(types.at(types.size() - 2), ApplicationData); // the close frame
    QCOMPARE(types.last(), Alert);                         // then close_notify
}

void tst_Tls::origins_data()
{
    QTest::addColumn<QStringList>("allowed");
    QTest::addColumn<QByteArray>("origin"); // empty: no Origin header
    QTest::addColumn<bool>("accepted");

    const QStringList app{ "https://app.example" };
    QTest::addRow("default: any") << QStringList() << QByteArray("https://evil.example") << true;
    QTest::addRow("listed") << app << QByteArray("https://app.example") << true;
    QTest::addRow("case aside") << QStringList{ "https://App.Example" }
                                << QByteArray("https://app.example") << true;
    QTest::addRow("second entry") << QStringList{ "https://a.example", "https://b.example:8443" }
                                  << QByteArray("https://b.example:8443") << true;
    QTest::addRow("wildcard") << QStringList{ "*" } << QByteArray("https://evil.example") << true;
    QTest::addRow("no Origin: not a page") << app << QByteArray() << true;
    QTest::addRow("another site") << app << QByteArray("https://evil.example") << false;
    QTest::addRow("another port") << app << QByteArray("https://app.example:8443") << false;
    QTest::addRow("another scheme") << app << QByteArray("http://app.example") << false;
    QTest::addRow("a subdomain") << app << QByteArray("https://x.app.example") << false;
    QTest::addRow("opaque origin") << app << QByteArray("null") << false;
}

void tst_Tls::origins()
{
    QFETCH(QStringList, allowed);
    QFETCH(QByteArray, origin);
    QFETCH(bool, accepted);
    server->setAllowedOrigins(allowed);
    QCOMPARE(server->allowedOrigins(), allowed);
    bool authenticated = false;
    server->setAuthenticator([&](const HandshakeRequest &) {
        authenticated = true;
        return AuthResult::anonymous();
    });
    QSignalSpy refused(server.get(), &Server::clientRefused);

    TestPeer peer;
    peer.socket.setSslConfiguration(clientTls("ca"));
    QList<QPair<QByteArray, QByteArray>> headers;
    if (!origin.isEmpty())
        headers.append({ "Origin", origin });
    QVERIFY(peer.open(server->serverUrl(), headers, { "qtnotif.v1" }, accepted));
    if (accepted) {
        QCOMPARE(server->connectionCount(), 1);
        QCOMPARE(refused.size(), 0);
        return;
    }
    QCOMPARE(int(peer.socket.closeCode()), 4403);
    QCOMPARE(peer.socket.closeReason(), "origin not allowed: " + QString::fromLatin1(origin));
    QVERIFY(peer.framesOf("welcome").isEmpty());
    QCOMPARE(refused.size(), 1);
    // Checked before the authenticator, which would see the other site's cookies.
    QVERIFY(!authenticated);
    QCOMPARE(server->connectionCount(), 0);
}

void tst_Tls::clientLibrarySendsNoOrigin()
{
    server->setAllowedOrigins({ "https://app.example" });
    QString origin = "unset";
    server->setAuthenticator([&](const HandshakeRequest &request) {
        origin = QString::fromLatin1(request.header("origin"));
        return AuthResult::anonymous();
    });
    QVERIFY(openAndWait(*makeClient()));
    QCOMPARE(origin, QString());
}

void tst_Tls::allowedOriginWithAPathIsWarnedAbout()
{
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("https://app.example/chat.*matches no"));
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("app.example\".*matches no"));
    server->setAllowedOrigins({ "https://app.example/chat", "app.example", "https://ok.example" });
}

void tst_Tls::qmlClientCaCertificates()
{
#ifdef QTNOTIF_QML_IMPORT_DIR
    QQmlEngine engine;
    engine.addImportPath(QTNOTIF_QML_IMPORT_DIR);
    QQmlComponent component(&engine);
    component.setData("import QtNotif\nClient { active: true }", QUrl());
    std::unique_ptr<QObject> object(component.createWithInitialProperties(
            { { "url", server->serverUrl() },
              { "caCertificates", QUrl::fromLocalFile(path("ca.pem")) } }));
    QVERIFY2(object, qPrintable(component.errorString()));
    auto *client = qobject_cast<Client *>(object.get());
    QVERIFY(client);
    client->setReconnectDelays(20ms, 200ms);
    QTRY_COMPARE(client->state(), State::Connected);

    // A file without certificates trusts nothing (and says so).
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("no PEM certificate in"));
    QVERIFY(client->setProperty("caCertificates", QUrl::fromLocalFile(path("missing.pem"))));
    client->setProperty("active", false);
    client->setProperty("active", true);
    QTRY_COMPARE(client->error(), Client::Error::SslError);

    // Back to the CA file: welcomed on the next attempt.
    QVERIFY(client->setProperty("caCertificates", QUrl::fromLocalFile(path("ca.pem"))));
    QTRY_COMPARE(client->state(), State::Connected);
#else
    QSKIP("built without the QML module");
#endif
}

QTNOTIF_TEST_MAIN(tst_Tls)
#include "tst_tls.moc"
