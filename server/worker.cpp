#include "worker_p.h"

#include "epolleventdispatcher.h"
#include "logging_p.h"
#include "server_p.h"
#include "upgrade_p.h"

namespace QtNotif {

namespace {

// Runs call in the server's thread, from its event loop. The server outlives its workers: it
// stops them before it goes, and calls still queued for it then are dropped with it.
template<typename Call>
void post(ServerPrivate *server, Call &&call)
{
    QMetaObject::invokeMethod(server->q, std::forward<Call>(call), Qt::QueuedConnection);
}

} // namespace

Worker::Worker(ServerPrivate *server, int id, const Settings &settings)
    : m_server(server), m_id(id), m_settings(settings),
      m_acceptor(
              [this](QTcpSocket *socket, const Upgrade &upgrade) { onUpgraded(socket, upgrade); })
{
    m_acceptor.setTlsContext(settings.tls);
    m_acceptor.setHandshakeTimeout(settings.handshakeTimeout);
}

Worker::~Worker()
{
    // In the worker's thread, its event loop done: the sockets go now, not later.
    for (auto &[ticket, entry] : m_links)
        delete entry.link->release();
    m_links.clear();
}

void Worker::setSettings(const Settings &settings)
{
    if (settings.maxFrameSize != m_settings.maxFrameSize) {
        for (auto &[ticket, entry] : m_links)
            entry.link->setMaxFrameSize(settings.maxFrameSize);
    }
    m_settings = settings;
    m_acceptor.setTlsContext(settings.tls);
    m_acceptor.setHandshakeTimeout(settings.handshakeTimeout);
}

void Worker::adopt(qintptr descriptor)
{
    m_acceptor.adopt(descriptor);
}

void Worker::onUpgraded(QTcpSocket *socket, const Upgrade &upgrade)
{
    const Handshake handshake = Handshake::of(upgrade, *socket);
    const quint64 ticket = ++m_lastTicket;
    if (handshake.connected) {
        auto link = std::make_unique<SocketLink>(socket, upgrade.response);
        link->setMaxFrameSize(m_settings.maxFrameSize);
        m_links.emplace(ticket, Entry{ std::move(link) });
    } else {
        socket->deleteLater();
    }
    // The link reads its frames once the server has answered (run()), as on the server's
    // thread, where they follow the welcome.
    post(m_server, [server = m_server, id = m_id, ticket, handshake] {
        server->onWorkerHandshake(id, ticket, handshake);
    });
}

void Worker::linkText(quint64 tag, const QByteArray &utf8)
{
    post(m_server, [server = m_server, id = m_id, tag, message = QString::fromUtf8(utf8)] {
        server->onWorkerText(id, tag, message);
    });
}

void Worker::linkBinary(quint64 tag)
{
    post(m_server, [server = m_server, id = m_id, tag] { server->onWorkerBinary(id, tag); });
}

void Worker::linkPong(quint64 tag)
{
    post(m_server, [server = m_server, id = m_id, tag] { server->onWorkerPong(id, tag); });
}

void Worker::linkPinged(quint64 tag)
{
    // The link answers the client's pings by itself: a client that sends pings and reads
    // nothing is caught here.
    const auto it = m_links.find(tag);
    if (it != m_links.end())
        boundSendQueue(tag, it->second);
}

void Worker::linkEnded(quint64 tag, quint16 closeCode, const QString &reason)
{
    const auto it = m_links.find(tag);
    if (it == m_links.end())
        return;
    if (closeCode != 0)
        it->second.link->close(&m_closing, closeCode, reason);
    gone(tag);
}

void Worker::gone(quint64 ticket)
{
    const auto it = m_links.find(ticket);
    if (it == m_links.end())
        return;
    m_links.erase(it);
    post(m_server, [server = m_server, id = m_id, ticket] { server->onWorkerGone(id, ticket); });
}

void Worker::run(const WorkerBatch &batch)
{
    // The sockets welcomed in this batch read their frames after it: after their welcome and
    // what the server sent with it, as on the server's thread.
    QList<quint64> admitted;
    for (const LinkCommand &command : batch.commands) {
        const auto it = m_links.find(command.ticket);
        if (it == m_links.end())
            continue; // gone meanwhile: the server is told, or was
        Entry &entry = it->second;
        switch (command.kind) {
        case LinkCommand::Kind::Admit:
            entry.admitted = true;
            admitted.append(command.ticket);
            break;
        case LinkCommand::Kind::Frames:
            if (!entry.overflowing) {
                entry.link->writeFrames(batch.frames.data() + command.first, command.count);
                boundSendQueue(command.ticket, entry);
            }
            break;
        case LinkCommand::Kind::Ping:
            entry.link->ping(); // past what boundSendQueue() saw, as the link's pongs
            boundSendQueue(command.ticket, entry);
            break;
        case LinkCommand::Kind::Close:
            entry.link->close(&m_closing, command.closeCode, command.text);
            m_links.erase(it);
            break;
        }
    }
    for (quint64 ticket : std::as_const(admitted)) {
        const auto it = m_links.find(ticket);
        if (it != m_links.end())
            it->second.link->start(this, ticket); // may end it: then gone()
    }
}

void Worker::boundSendQueue(quint64 ticket, Entry &entry)
{
    if (entry.overflowing || entry.link->bytesToWrite() <= m_settings.maxSendQueue)
        return;
    entry.link->flush();
    const qint64 waiting = entry.link->bytesToWrite();
    if (waiting <= m_settings.maxSendQueue)
        return;
    entry.overflowing = true;
    post(m_server, [server = m_server, id = m_id, ticket, waiting] {
        server->onWorkerOverflow(id, ticket, waiting);
    });
}

void Worker::closeHandshakes()
{
    m_acceptor.close();
    QList<quint64> waiting;
    for (const auto &[ticket, entry] : m_links) {
        if (!entry.admitted)
            waiting.append(ticket);
    }
    // The server is told (gone()), so that one it admits meanwhile is removed at once.
    for (quint64 ticket : waiting)
        gone(ticket); // the link aborts its socket as it goes
}

void Worker::flushClosing()
{
    const QList<QTcpSocket *> closing = m_closing.findChildren<QTcpSocket *>();
    for (QTcpSocket *socket : closing)
        socket->flush();
}

qsizetype Worker::handshakesInProgress() const
{
    qsizetype count = m_acceptor.handshakesInProgress();
    for (const auto &[ticket, entry] : m_links)
        count += entry.admitted ? 0 : 1;
    return count;
}

WorkerThread::WorkerThread(ServerPrivate *server, int id, const Worker::Settings &settings)
    : m_server(server), m_id(id), m_settings(settings)
{
    setObjectName(QStringLiteral("qtnotif worker %1").arg(id));
    // A worker's turn then costs in proportion to its sockets that are ready, not to all of them.
    setEventDispatcher(new EpollEventDispatcher);
    start();
    m_ready.acquire();
}

WorkerThread::~WorkerThread()
{
    // Queued behind everything the server's thread sent the worker: what it closed is closed
    // before the sockets go.
    QMetaObject::invokeMethod(
            m_worker, [] { QThread::currentThread()->quit(); }, Qt::QueuedConnection);
    wait();
}

void WorkerThread::run()
{
    {
        Worker worker(m_server, m_id, m_settings);
        m_worker = &worker;
        m_ready.release();
        exec();
        // Flushes what the sockets still hold (close frames among them) before they go.
        worker.flushClosing();
    }
}

} // namespace QtNotif
