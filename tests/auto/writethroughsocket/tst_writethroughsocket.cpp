// WriteThroughSocket (server/writethroughsocket_p.h) over loopback: what it writes goes straight
// to the kernel while the peer keeps up, to Qt's buffer once the peer falls behind, and arrives
// whole and in order either way; its read buffer gives back its block without losing a byte.
#include "writethroughsocket_p.h"

#include <QtCore/QPointer>
#include <QtCore/QRegularExpression>
#include <QtCore/QScopeGuard>
#include <QtNetwork/QTcpServer>
#include <QtNetwork/QTcpSocket>
#include <QtTest/QSignalSpy>
#include <QtTest/QTest>

#include <memory>

#ifdef __GLIBC__
#include <malloc.h>
#endif
#ifdef Q_OS_LINUX
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

using namespace QtNotif;

namespace {

// Bytes numbered from first on: a piece of a stream whose every byte tells where it belongs.
QByteArray numberedBytes(qint64 first, qsizetype size)
{
    QByteArray bytes(size, Qt::Uninitialized);
    for (qsizetype i = 0; i < size; ++i)
        bytes[i] = char((first + i) % 251); // a prime, so that no chunk size hides a shift
    return bytes;
}

} // namespace

class tst_WriteThroughSocket : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void init();
    void cleanup();

    void writesGoStraightToTheKernel();
    void aPeerThatDoesNotReadGetsQtsBuffer();
    void anErrorIsLeftToQt();
    void releasingTheReadBufferGivesBackItsBlock();
    void releasingTheReadBufferKeepsWhatWaits();

private:
    // Connects client to server over loopback; returns the server's end.
    QTcpSocket *connectPair(QTcpServer &tcpServer);

    std::unique_ptr<WriteThroughServer> server;
    std::unique_ptr<QTcpSocket> client;
    QPointer<QTcpSocket> serverEnd;
};

void tst_WriteThroughSocket::init()
{
    server = std::make_unique<WriteThroughServer>();
    QVERIFY(server->listen(QHostAddress::LocalHost));
    client = std::make_unique<QTcpSocket>();
    serverEnd = connectPair(*server);
    QVERIFY(serverEnd);
}

void tst_WriteThroughSocket::cleanup()
{
    client.reset();
    delete serverEnd;
    server.reset();
}

QTcpSocket *tst_WriteThroughSocket::connectPair(QTcpServer &tcpServer)
{
    QSignalSpy accepted(&tcpServer, &QTcpServer::newConnection);
    client->connectToHost(QHostAddress::LocalHost, tcpServer.serverPort());
    if (!client->waitForConnected(5000) || (accepted.isEmpty() && !accepted.wait(5000)))
        return nullptr;
    return tcpServer.nextPendingConnection();
}

void tst_WriteThroughSocket::writesGoStraightToTheKernel()
{
#ifndef Q_OS_LINUX
    QSKIP("written through on Linux only");
#endif
    QVERIFY(dynamic_cast<WriteThroughSocket *>(serverEnd.data()));
    QCOMPARE(serverEnd->write("hello "), 6);
    QCOMPARE(serverEnd->bytesToWrite(), 0); // nothing in Qt's buffer
    QCOMPARE(serverEnd->write("world"), 5);
    QCOMPARE(serverEnd->bytesToWrite(), 0);
    QTRY_COMPARE(client->bytesAvailable(), 11);
    QCOMPARE(client->readAll(), QByteArray("hello world"));

    // What a plain QTcpSocket does, for comparison: the same write waits in Qt's buffer until
    // the event loop flushes it.
    QTcpServer plainServer;
    QVERIFY(plainServer.listen(QHostAddress::LocalHost));
    client = std::make_unique<QTcpSocket>();
    std::unique_ptr<QTcpSocket> plainEnd(connectPair(plainServer));
    QVERIFY(plainEnd);
    QCOMPARE(plainEnd->write("hello "), 6);
    QCOMPARE(plainEnd->bytesToWrite(), 6);
    QTRY_COMPARE(client->bytesAvailable(), 6);
}

void tst_WriteThroughSocket::aPeerThatDoesNotReadGetsQtsBuffer()
{
#ifndef Q_OS_LINUX
    QSKIP("written through on Linux only");
#else
    // A client of plain system calls: it reads when the test says, whatever the event loop does.
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    QVERIFY(fd >= 0);
    const auto closeFd = qScopeGuard([fd] { ::close(fd); });
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_port = htons(server->serverPort());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    QSignalSpy accepted(server.get(), &QTcpServer::newConnection);
    QVERIFY(::connect(fd, reinterpret_cast<const sockaddr *>(&address), sizeof address) == 0);
    QVERIFY(!accepted.isEmpty() || accepted.wait(5000));
    std::unique_ptr<QTcpSocket> writer(server->nextPendingConnection());
    QVERIFY(writer);
    qint64 received = 0;
    bool inOrder = true;
    const auto readSome = [&] {
        char bytes[64 * 1024];
        for (;;) {
            const ssize_t n = ::recv(fd, bytes, sizeof bytes, MSG_DONTWAIT);
            if (n <= 0)
                return received;
            if (inOrder && QByteArrayView(bytes, n) != numberedBytes(received, n))
                inOrder = false;
            received += n;
        }
    };

    // Written while the client reads nothing: the kernel fills up, then Qt's buffer takes the
    // rest.
    constexpr qsizetype Piece = 64 * 1024;
    constexpr qint64 Total = 16 * 1024 * 1024; // far more than the kernel's buffers hold
    qint64 written = 0;
    while (written < Total && writer->bytesToWrite() < 4 * Piece) {
        QCOMPARE(writer->write(numberedBytes(written, Piece)), Piece);
        written += Piece;
    }
    QVERIFY2(written < Total, "the kernel took every byte of a peer that does not read");

    // The client empties the kernel's buffers while Qt still holds bytes, which it sends from
    // the event loop, not run meanwhile: a write now goes behind them, never past them.
    QVERIFY(readSome() > 0);
    QCOMPARE(writer->bytesToWrite(), written - received);
    QCOMPARE(writer->write(numberedBytes(written, 100)), 100);
    written += 100;
    QCOMPARE(writer->bytesToWrite(), written - received);

    // Every byte arrives, in order, once the event loop runs.
    QTRY_COMPARE_WITH_TIMEOUT(readSome(), written, 20000);
    QVERIFY(inOrder);
    QCOMPARE(writer->bytesToWrite(), 0);

    // Caught up again: straight to the kernel.
    QCOMPARE(writer->write(numberedBytes(written, 10)), 10);
    QCOMPARE(writer->bytesToWrite(), 0);
    written += 10;
    QTRY_COMPARE(readSome(), written);
    QVERIFY(inOrder);
#endif
}

void tst_WriteThroughSocket::anErrorIsLeftToQt()
{
    // The peer resets the connection: writes past it end in Qt's own error and disconnection,
    // as with a plain QTcpSocket.
    QSignalSpy errors(serverEnd.data(), &QAbstractSocket::errorOccurred);
    QSignalSpy disconnected(serverEnd.data(), &QAbstractSocket::disconnected);
    client->abort();
    QTRY_VERIFY_WITH_TIMEOUT(
            [&] {
                serverEnd->write(QByteArray(1024, 'x'));
                return !errors.isEmpty();
            }(),
            5000);
    QVERIFY(errors.first().first().value<QAbstractSocket::SocketError>()
                    == QAbstractSocket::RemoteHostClosedError
            || errors.first().first().value<QAbstractSocket::SocketError>()
                       == QAbstractSocket::NetworkError);
    QTRY_COMPARE(disconnected.size(), 1);
}

QTEST_GUILESS_MAIN(tst_WriteThroughSocket)

#include "tst_writethroughsocket.moc"

void tst_WriteThroughSocket::releasingTheReadBufferGivesBackItsBlock()
{
#if !defined(__GLIBC__) || defined(__SANITIZE_ADDRESS__)
    QSKIP("counts the heap with glibc's allocator");
#else
    auto *socket = static_cast<WriteThroughSocket *>(serverEnd.data());
    const QByteArray first = numberedBytes(0, 100);
    QCOMPARE(client->write(first), qint64(first.size()));
    QTRY_COMPARE(socket->bytesAvailable(), qint64(first.size()));
    // Read into memory of its own, as QWebSocket reads a frame's header: the emptied buffer
    // keeps its block.
    QByteArray got(first.size(), Qt::Uninitialized);
    QCOMPARE(socket->read(got.data(), 2), qint64(2));
    QCOMPARE(socket->read(got.data() + 2, first.size() - 2), qint64(first.size() - 2));
    QCOMPARE(got, first);

    const std::size_t before = mallinfo2().uordblks;
    socket->releaseReadBuffer();
    const std::size_t after = mallinfo2().uordblks;
    QVERIFY2(after + 16 * 1024 <= before,
             qPrintable(QStringLiteral("the heap went from %1 to %2 bytes in use")
                                .arg(before)
                                .arg(after)));
    QCOMPARE(socket->bytesAvailable(), qint64(0));

    // The socket reads on as before.
    const QByteArray second = numberedBytes(first.size(), 300);
    QCOMPARE(client->write(second), qint64(second.size()));
    QTRY_COMPARE(socket->bytesAvailable(), qint64(second.size()));
    QCOMPARE(socket->readAll(), second);
#endif
}

void tst_WriteThroughSocket::releasingTheReadBufferKeepsWhatWaits()
{
    // Nor does it make Qt warn (QIODevice::ungetChar() refuses to work in a transaction).
    QTest::failOnWarning(QRegularExpression(QStringLiteral(".")));
    auto *socket = static_cast<WriteThroughSocket *>(serverEnd.data());
    const QByteArray sent = numberedBytes(0, 100);
    QCOMPARE(client->write(sent), qint64(sent.size()));
    QTRY_COMPARE(socket->bytesAvailable(), qint64(sent.size()));

    // Bytes still buffered stay, in order.
    QCOMPARE(socket->read(40), sent.left(40));
    socket->releaseReadBuffer();
    QCOMPARE(socket->bytesAvailable(), qint64(60));

    // So do those a read transaction has read so far.
    socket->startTransaction();
    QCOMPARE(socket->read(60), sent.mid(40));
    QCOMPARE(socket->bytesAvailable(), qint64(0));
    socket->releaseReadBuffer();
    socket->rollbackTransaction();
    QCOMPARE(socket->readAll(), sent.mid(40));
}
