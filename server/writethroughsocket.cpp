#include "writethroughsocket_p.h"

#ifdef Q_OS_LINUX
#include <sys/socket.h>
#include <sys/types.h>
#endif

namespace QtNotif {

qint64 WriteThroughSocket::writeData(const char *data, qint64 size)
{
#ifdef Q_OS_LINUX
    const qintptr descriptor = socketDescriptor();
    if (size > 0 && descriptor >= 0 && bytesToWrite() == 0 && state() == ConnectedState) {
        const ssize_t sent
                = ::send(int(descriptor), data, std::size_t(size), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent == size)
            return size;
        if (sent > 0) {
            const qint64 rest = QTcpSocket::writeData(data + sent, size - sent);
            return rest < 0 ? rest : sent + rest;
        }
    }
#endif
    return QTcpSocket::writeData(data, size);
}

void WriteThroughSocket::releaseReadBuffer()
{
    if (bytesAvailable() != 0 || isTransactionStarted() || state() != ConnectedState)
        return;
    // The byte put back goes into the kept block, and a read of exactly the buffer's next block
    // takes that block out of the buffer instead of copying from it (QIODevice::read(qint64)):
    // dropping what it returns frees the block.
    ungetChar('\0');
    read(1);
}

void WriteThroughServer::incomingConnection(qintptr descriptor)
{
    auto *socket = new WriteThroughSocket(this);
    socket->setSocketDescriptor(descriptor);
    addPendingConnection(socket);
}

} // namespace QtNotif
