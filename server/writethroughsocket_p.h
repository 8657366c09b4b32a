#pragma once

#include <QtNetwork/QTcpServer>
#include <QtNetwork/QTcpSocket>

namespace QtNotif {

// A plain TCP socket whose writes go straight to the kernel while Qt holds nothing back for
// it, and to Qt's write buffer otherwise.
//
// Why: QAbstractSocket copies each write into its write buffer, whose first chunk takes 32 KiB
// and stays allocated, emptied, for the life of the socket; the 101 response of the upgrade is
// enough. With many idle connections that chunk, touched at its start and leaving a hole in
// the heap, was a third of the memory of each (docs/performance.md, "Memory per idle
// connection"). Written through, the chunk is only allocated for a client that falls behind.
//
// What the kernel does not take (the peer does not read, and the kernel's buffers are full),
// and any error, is left to Qt's buffer, which sends it from the event loop or reports the
// error; later writes go behind it, where the server's send-queue bound sees them
// (Server::setMaxSendQueue counts what Qt holds), until Qt has sent it all. The kernel is not
// asked what it holds before each write: that would be a system call more for every write, and
// SocketLink's gathered writes of frames do not ask either. Bytes written through emit no
// bytesWritten(): nothing in the server uses it. Elsewhere than Linux, a plain QTcpSocket.
//
// The read side has a block of its own, which releaseReadBuffer() gives back.
class WriteThroughSocket : public QTcpSocket
{
public:
    explicit WriteThroughSocket(QObject *parent = nullptr) : QTcpSocket(parent) { }

    // Gives back the block Qt's read buffer keeps once emptied, when nothing is buffered and
    // no read transaction is open; otherwise does nothing. The stream is unchanged either way.
    //
    // Why: QAbstractSocket reads the network into a 16 KiB block, and an emptied block stays
    // for the next read unless a read took it whole. After the frames a client sends while it
    // sets up (its listens), a sixth to a third of the connections kept one, for good: 0.6 KiB
    // of RSS per idle connection on average (docs/performance.md, "Memory per idle
    // connection").
    // Called once a frame has been read; the next read of the network takes a block again.
    void releaseReadBuffer();

protected:
    qint64 writeData(const char *data, qint64 size) override;
};

// Makes its sockets as QTcpServer does, but WriteThroughSocket ones.
class WriteThroughServer : public QTcpServer
{
public:
    explicit WriteThroughServer(QObject *parent = nullptr) : QTcpServer(parent) { }

protected:
    void incomingConnection(qintptr descriptor) override;
};

} // namespace QtNotif
