// qtnotif-bench-naive-qt: the fan-out server anyone would write with Qt in an afternoon, the
// baseline qtnotif is compared with (system "naive-qt" of bench/peers/README.md).
//   qtnotif-bench-naive-qt [--host 127.0.0.1] [--port 0] [--tls-certificate FILE --tls-key FILE]
//
// A QWebSocketServer; rooms in a QHash of key to the sockets listening to it; each publish parsed
// with QJsonDocument, the notification text built once and sent with sendTextMessage() to every
// listener. No heartbeats, no limits, no authentication. Wire format (client → server):
//   {"op":"listen","key":K}              answered {"op":"listening","key":K}
//   {"op":"publish","key":K,"data":D}    not answered; every listener of K gets {"key":K,"data":D}
// It prints "listening on ws://HOST:PORT/" (wss:// with TLS) once it accepts connections and
// exits with status 0 when its stdin closes or on SIGTERM. Everything runs on the main thread.
#include "benchtls.h"

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QHash>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QList>
#include <QtCore/QSocketNotifier>
#include <QtCore/QTextStream>
#include <QtNetwork/QSslSocket>
#include <QtNetwork/QTcpServer>
#include <QtNetwork/QTcpSocket>
#include <QtWebSockets/QWebSocket>
#include <QtWebSockets/QWebSocketServer>

#include <csignal>
#include <fcntl.h>
#include <unistd.h>

using namespace Qt::StringLiterals;

namespace {

int fail(const QString &message)
{
    QTextStream(stderr) << "qtnotif-bench-naive-qt: " << message << Qt::endl;
    return 1;
}

// SIGTERM writes a byte here; the event loop reads it and quits (a signal handler may not).
int terminatePipe[2] = { -1, -1 };

void onTerminate(int)
{
    const char byte = 1;
    [[maybe_unused]] const ssize_t written = write(terminatePipe[1], &byte, 1);
}

// Rooms and the keys of each socket, so that a disconnect leaves every room it was in.
struct Rooms
{
    QHash<QString, QList<QWebSocket *>> listeners;
    QHash<QWebSocket *, QStringList> keysOf;

    void onMessage(QWebSocket *socket, const QString &message)
    {
        const QJsonObject frame = QJsonDocument::fromJson(message.toUtf8()).object();
        const QString op = frame.value(u"op"_s).toString();
        const QString key = frame.value(u"key"_s).toString();
        if (op == u"publish"_s) {
            const auto it = listeners.constFind(key);
            if (it == listeners.cend())
                return;
            const QJsonObject notification{ { u"key"_s, key },
                                            { u"data"_s, frame.value(u"data"_s) } };
            const QString text
                    = QString::fromUtf8(QJsonDocument(notification).toJson(QJsonDocument::Compact));
            for (QWebSocket *listener : *it)
                listener->sendTextMessage(text);
        } else if (op == u"listen"_s) {
            QStringList &keys = keysOf[socket];
            if (!keys.contains(key)) {
                keys.append(key);
                listeners[key].append(socket);
            }
            const QJsonObject answer{ { u"op"_s, u"listening"_s }, { u"key"_s, key } };
            socket->sendTextMessage(
                    QString::fromUtf8(QJsonDocument(answer).toJson(QJsonDocument::Compact)));
        }
    }

    void onDisconnected(QWebSocket *socket)
    {
        const QStringList keys = keysOf.take(socket);
        for (const QString &key : keys) {
            auto it = listeners.find(key);
            if (it == listeners.end())
                continue;
            it->removeOne(socket);
            if (it->isEmpty())
                listeners.erase(it);
        }
        socket->deleteLater();
    }
};

// A QTcpServer whose sockets are QSslSockets, pending once encrypted, when given a TLS
// configuration: the WebSocket server then reads and writes them as any QTcpSocket.
class TcpServer : public QTcpServer
{
public:
    explicit TcpServer(const std::optional<QSslConfiguration> &tls) : m_tls(tls) { }

protected:
    void incomingConnection(qintptr descriptor) override
    {
        if (!m_tls)
            return QTcpServer::incomingConnection(descriptor);
        auto *socket = new QSslSocket(this);
        if (!socket->setSocketDescriptor(descriptor)) {
            delete socket;
            return;
        }
        socket->setSslConfiguration(*m_tls);
        QObject::connect(socket, &QSslSocket::encrypted, this, [this, socket] {
            QObject::disconnect(socket, nullptr, this, nullptr);
            addPendingConnection(socket);
            Q_EMIT newConnection();
        });
        QObject::connect(socket, &QAbstractSocket::errorOccurred, this,
                         [socket] { socket->deleteLater(); });
        socket->startServerEncryption();
    }

private:
    std::optional<QSslConfiguration> m_tls;
};

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(u"qtnotif-bench-naive-qt"_s);

    QCommandLineParser parser;
    parser.setApplicationDescription(
            u"A plain QWebSocketServer fan-out, the baseline of bench/run.sh peers."_s);
    parser.addHelpOption();
    const QCommandLineOption hostOption(u"host"_s, u"Address to listen on (127.0.0.1)."_s,
                                        u"address"_s, u"127.0.0.1"_s);
    const QCommandLineOption portOption(u"port"_s, u"Port to listen on; 0 for any free one (0)."_s,
                                        u"port"_s, u"0"_s);
    const QtNotifBench::TlsOptions tlsOptions;
    parser.addOptions({ hostOption, portOption, tlsOptions.certificate, tlsOptions.key });
    parser.process(app);

    QHostAddress address;
    if (!address.setAddress(parser.value(hostOption)))
        return fail(u"--host: not an IP address: "_s + parser.value(hostOption));
    bool portOk = false;
    const uint port = parser.value(portOption).toUInt(&portOk);
    if (!portOk || port > 65535)
        return fail(u"--port: not a port number: "_s + parser.value(portOption));
    std::optional<QSslConfiguration> tls;
    if (QString error; !tlsOptions.read(parser, tls, error))
        return fail(error);

    // Our own QTcpServer hands the sockets to the QWebSocketServer, so that each gets
    // TCP_NODELAY first (QWebSocket does not expose its socket): without it Nagle would delay
    // the small frames and this baseline would look slower than it is.
    TcpServer tcpServer(tls);
    // The load generator keeps up to ~500 handshakes outstanding; Qt's default backlog (50)
    // would drop SYNs and add retransmission seconds to the connect time.
    tcpServer.setListenBacklogSize(4096);
    QWebSocketServer webSocketServer(u"naive-qt"_s, QWebSocketServer::NonSecureMode);
    Rooms rooms;
    QObject::connect(&tcpServer, &QTcpServer::newConnection, &webSocketServer,
                     [&tcpServer, &webSocketServer] {
                         while (QTcpSocket *socket = tcpServer.nextPendingConnection()) {
                             socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
                             webSocketServer.handleConnection(socket);
                         }
                     });
    QObject::connect(&webSocketServer, &QWebSocketServer::newConnection, &webSocketServer,
                     [&webSocketServer, &rooms] {
                         while (QWebSocket *socket = webSocketServer.nextPendingConnection()) {
                             QObject::connect(socket, &QWebSocket::textMessageReceived, socket,
                                              [&rooms, socket](const QString &message) {
                                                  rooms.onMessage(socket, message);
                                              });
                             QObject::connect(socket, &QWebSocket::disconnected, socket,
                                              [&rooms, socket] { rooms.onDisconnected(socket); });
                         }
                     });
    if (!tcpServer.listen(address, quint16(port)))
        return fail(u"cannot listen: "_s + tcpServer.errorString());

    // Stops on SIGTERM and when stdin closes (the script that started it ended).
    if (pipe2(terminatePipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return fail(u"pipe2 failed"_s);
    std::signal(SIGTERM, onTerminate);
    QSocketNotifier terminateNotifier(terminatePipe[0], QSocketNotifier::Read);
    QObject::connect(&terminateNotifier, &QSocketNotifier::activated, &app,
                     [] { QCoreApplication::quit(); });
    QSocketNotifier stdinNotifier(STDIN_FILENO, QSocketNotifier::Read);
    QObject::connect(&stdinNotifier, &QSocketNotifier::activated, &app, [&stdinNotifier] {
        char buffer[256];
        const ssize_t got = read(STDIN_FILENO, buffer, sizeof buffer);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
            stdinNotifier.setEnabled(false);
            QCoreApplication::quit();
        }
    });

    // Flushed by endl: scripts read it through a pipe.
    QTextStream(stdout) << "listening on " << (tls ? "wss://" : "ws://")
                        << tcpServer.serverAddress().toString() << ':' << tcpServer.serverPort()
                        << '/' << Qt::endl;
    return app.exec();
}
