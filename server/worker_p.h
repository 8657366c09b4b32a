#pragma once

#include "acceptor_p.h"
#include "socketlink_p.h"
#include "wireframe_p.h"

#include <QtNotif/identity.h>

#include <QtCore/QObject>
#include <QtCore/QSemaphore>
#include <QtCore/QThread>

#include <atomic>
#include <unordered_map>
#include <vector>

namespace QtNotif {

class ServerPrivate;

// What the server's thread asks a worker to do with one of its sockets.
struct LinkCommand
{
    enum class Kind : quint8 {
        Admit,  // the server welcomed the socket's client: it is a connection now
        Frames, // write frames[first, first + count) of the batch
        Ping,
        Close, // close with closeCode and text as the reason
    };
    Kind kind = Kind::Admit;
    quint32 first = 0;
    quint32 count = 0;
    quint16 closeCode = 0;
    quint64 ticket = 0; // the socket's number in its worker
    QString text;
};

// The commands of one event-loop turn of the server's thread for one worker, in the order they
// were made, handed over in one queued call. The frames are shared with every other recipient
// (implicitly shared, with an atomic reference count: the worker may drop its copies).
struct WorkerBatch
{
    std::vector<LinkCommand> commands;
    std::vector<WireFrame> frames;
    bool isEmpty() const { return commands.empty(); }
};

// Owns the sockets of the connections handed to one worker thread, and lives in that thread:
// it reads their upgrade requests (its own Acceptor, which never listens), holds the links of
// the upgraded sockets, writes what the server sends them and closes them. Everything else, the
// application's code first, stays in the server's thread: the worker tells the server of each
// upgrade, text frame, pong, disconnection and stalled client with queued calls to
// ServerPrivate, and the server answers with WorkerBatch.
class Worker : public QObject, public SocketLink::Receiver
{
public:
    struct Settings
    {
        std::shared_ptr<TlsContext> tls; // null: ws://
        std::chrono::milliseconds handshakeTimeout{ 10000 };
        qint64 maxFrameSize = 0;
        qint64 maxSendQueue = 0;
    };

    Worker(ServerPrivate *server, int id, const Settings &settings);
    ~Worker() override;

    // Each of these runs in the worker's thread.
    // Takes a TCP connection the server's thread accepted.
    void adopt(qintptr descriptor);
    void run(const WorkerBatch &batch);
    void setSettings(const Settings &settings);
    // Drops the connections still in their handshake, as Acceptor::close() does: those not
    // upgraded yet, and those upgraded but not admitted by the server yet.
    void closeHandshakes();
    qsizetype handshakesInProgress() const;
    // Writes what the closing sockets still hold (their close frames) to the kernel.
    void flushClosing();

private:
    struct Entry
    {
        // Started once the server welcomed the client, so that no frame is read before.
        std::unique_ptr<SocketLink> link;
        bool admitted = false;
        // Set once more than maxSendQueue bytes waited for the client: the server is told,
        // and nothing more is written to it.
        bool overflowing = false;
    };

    void onUpgraded(QTcpSocket *socket, const Upgrade &upgrade);
    // What the links read (SocketLink::Receiver), told to the server; tag is the ticket.
    void linkText(quint64 tag, const QByteArray &utf8) override;
    void linkBinary(quint64 tag) override;
    void linkPong(quint64 tag) override;
    void linkPinged(quint64 tag) override;
    void linkEnded(quint64 tag, quint16 closeCode, const QString &reason) override;
    // Tells the server when more than maxSendQueue bytes wait for the client, as
    // ServerPrivate::boundSendQueue() does for sockets of the server's thread.
    void boundSendQueue(quint64 ticket, Entry &entry);
    void gone(quint64 ticket);

    ServerPrivate *m_server;
    int m_id;
    Settings m_settings;
    Acceptor m_acceptor;
    std::unordered_map<quint64, Entry> m_links;
    quint64 m_lastTicket = 0;
    // Owns the sockets closing gracefully, until they are gone.
    QObject m_closing;
};

// A worker's thread, as the server's thread sees it: started at listen(), stopped at the
// server's destruction (or when the number of workers changes). The Worker is made and
// destroyed in the thread itself, with every socket it still holds.
class WorkerThread : public QThread
{
public:
    WorkerThread(ServerPrivate *server, int id, const Worker::Settings &settings);
    ~WorkerThread() override; // stops the thread

    // Lives in the thread; valid from construction to destruction of this object.
    Worker *worker() const { return m_worker; }
    // This turn's commands, filled by the server's thread only.
    WorkerBatch batch;
    // The worker's sockets that are connections, by ticket. Server's thread only.
    std::unordered_map<quint64, ConnectionId> connections;
    int id() const { return m_id; }

protected:
    void run() override;

private:
    ServerPrivate *m_server;
    int m_id;
    Worker::Settings m_settings;
    Worker *m_worker = nullptr;
    QSemaphore m_ready;
};

} // namespace QtNotif
