// The chat demo's server: every rule of demo-app/README.md, over one QtNotif::Server.
#pragma once

#include "chatevent.h"

#include <QtNotif/notifier.h>
#include <QtNotif/server.h>

#include <QtCore/QByteArray>
#include <QtCore/QHash>
#include <QtCore/QList>
#include <QtCore/QObject>
#include <QtCore/QSet>
#include <QtCore/QString>
#include <QtCore/QStringList>
#include <QtCore/QUrl>
#include <QtCore/QVariantMap>
#include <QtNetwork/QHostAddress>

#include <optional>

namespace ChatDemo {

// The settings of a ChatServer; use it as ChatServer::Options. (It lives outside the class
// only because C++ does not let a nested struct's default member initialisers serve as a
// default argument of the enclosing class's constructor.)
struct ChatServerOptions
{
    // What the "rooms" call lists. Clients may listen to other room names too: rooms are keys.
    QStringList rooms{ QStringLiteral("lobby"), QStringLiteral("qt"), QStringLiteral("random") };
    // Who may call "kick".
    QStringList moderators{ QStringLiteral("alice") };
    // The HMAC-SHA256 key of the login tokens. Demo default: pass your own with --secret.
    QByteArray secret = QByteArrayLiteral("qtnotif-demo-secret");
    // How many messages each room keeps for "history".
    int historySize = 100;
};

// The chat server of the demo: rooms are keys of three notifiers ("messages", "typing",
// "members"), users log in with the upstream call "login", and the other calls (send, typing,
// history, members, block, kick) are handlers on the server. See demo-app/README.md for the
// contract the clients rely on.
//
// Its authentication is a demo, NOT for production: anyone may log in under any name, and a
// token (name plus an HMAC of it) never expires.
//
// Lives in, and is used from, the thread that created it; state (history, block lists) is
// kept in memory only.
class ChatServer : public QObject
{
    Q_OBJECT
public:
    using Options = ChatServerOptions;

    // The notifier types of the contract, keyed by room name.
    using MessagesNotifier = QtNotif::Notifier<QString, ChatEvent, QVariantMap>;
    using TypingNotifier = QtNotif::SimpleNotifier<QString, QVariantMap>;
    // Its ServerNotif only names a change of the members ("<node>/<n>"); prepare, on the
    // recipient's node, asks the cluster who they are now. See publishMembers().
    using MembersNotifier = QtNotif::Notifier<QString, QString, QVariantMap>;

    explicit ChatServer(const Options &options = Options(), QObject *parent = nullptr);
    // Closes every client connection (close code 1001: they reconnect to the next server).
    ~ChatServer() override;

    // Starts accepting clients; port 0 picks a free port. Returns false and sets errorString()
    // when the address cannot be bound.
    bool listen(const QHostAddress &address = QHostAddress::LocalHost, quint16 port = 0);
    // ws://host:port once listening; empty before.
    QUrl url() const;
    QString errorString() const;

    // The SDK server underneath, for tests and tools. Owned by this ChatServer.
    QtNotif::Server *server() const;
    // The token "login" hands out for name: "name.<hex HMAC-SHA256(secret, name)>" (demo only).
    QString tokenFor(const QString &name) const;

    // The names "login" accepts: 1 to 32 characters of [A-Za-z0-9_-].
    static bool isValidName(const QString &name);
    // The sorted, distinct names of the users listening to "messages" for room on this
    // server; the members of a cluster are what the "members" call and notifier give.
    QStringList localMembers(const QString &room) const;
    // The names user has blocked, sorted.
    QStringList blockedBy(const QString &user) const;

private:
    QtNotif::AuthResult authenticate(const QtNotif::HandshakeRequest &request) const;
    QtNotif::Identity identityFor(const QString &name) const;
    // prepare of "messages": what user receives of event, or nothing.
    std::optional<QVariantMap> eventFor(const QString &user, const ChatEvent &event) const;
    // A new event of room, numbered and timed now.
    ChatEvent newEvent(const QString &room, const QString &from, const QString &text,
                       const QString &kind);
    // Keeps event in its room's history and notifies it.
    void post(const ChatEvent &event, const QtNotif::NotFor &notFor);
    void publishMembers(const QString &room);

    // The handlers of the upstream calls, one per method.
    void handleLogin(const QtNotif::Request &request);
    void handleRooms(const QtNotif::Request &request);
    void handleSend(const QtNotif::Request &request);
    void handleTyping(const QtNotif::Request &request);
    void handleHistory(const QtNotif::Request &request);
    void handleMembers(const QtNotif::Request &request);
    void currentMembers(const QString &room, const QString &change, MembersNotifier::Done done);
    void handleBlock(const QtNotif::Request &request);
    void handleKick(const QtNotif::Request &request);

    const Options m_options;
    QtNotif::Server *m_server;    // child of this object
    MessagesNotifier *m_messages; // notifiers are owned by m_server
    TypingNotifier *m_typing;
    MembersNotifier *m_members;
    QHash<QString, QList<ChatEvent>> m_history; // per room, oldest first
    QHash<QString, QSet<QString>> m_blocked;    // per user: the names they blocked
    // Per members change, the recipients waiting for the one query they share.
    QHash<QString, QList<MembersNotifier::Done>> m_membersQueries;
    quint64 m_lastMembersChange = 0;
    // Starts at a random multiple of 2^32 (see the constructor).
    qint64 m_lastEventId = 0;
};

} // namespace ChatDemo
