#include "chatserver.h"

#include <QtCore/QCryptographicHash>
#include <QtCore/QDateTime>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonObject>
#include <QtCore/QLoggingCategory>
#include <QtCore/QMessageAuthenticationCode>
#include <QtCore/QRandomGenerator>
#include <QtCore/QRegularExpression>
#include <QtCore/QTimer>

#include <algorithm>
#include <functional>

using namespace Qt::StringLiterals;
using QtNotif::AbstractNotifier;
using QtNotif::AuthResult;
using QtNotif::ConnectionId;
using QtNotif::Identity;
using QtNotif::NotFor;
using QtNotif::Request;

namespace ChatDemo {

namespace {

Q_LOGGING_CATEGORY(lcChat, "qtnotif.demo.server", QtInfoMsg)

// 2000 characters: a long paragraph. Anything longer is a paste that belongs elsewhere, and a
// bound keeps the history's memory in check.
constexpr qsizetype MaxTextLength = 2000;
// Blocking is for a few pests, not for a directory.
constexpr qsizetype MaxBlockedUsers = 100;

// Compares without stopping at the first difference, so that how long a refusal takes does
// not tell a forger how much of a token was right.
bool equalInConstantTime(QByteArrayView a, QByteArrayView b)
{
    if (a.size() != b.size())
        return false;
    char difference = 0;
    for (qsizetype i = 0; i < a.size(); ++i)
        difference |= char(a[i] ^ b[i]);
    return difference == 0;
}

// The names of the @name tokens of a message, each once.
QStringList mentionsIn(const QString &text)
{
    static const QRegularExpression mention(u"@([A-Za-z0-9_-]+)"_s);
    QStringList names;
    for (const QRegularExpressionMatch &match : mention.globalMatch(text))
        names.append(match.captured(1));
    names.removeDuplicates();
    return names;
}

// The calls that act as a user begin with this: anonymous callers get "not_logged_in".
bool isLoggedIn(const Request &request)
{
    if (!request.identity().isAnonymous())
        return true;
    request.fail(u"not_logged_in"_s, u"log in first"_s);
    return false;
}

QVariantMap typingNotification(const QString &user, bool typing)
{
    return { { u"user"_s, user }, { u"typing"_s, typing } };
}

} // namespace

ChatServer::ChatServer(const Options &options, QObject *parent)
    : QObject(parent), m_options(options), m_server(new QtNotif::Server(this))
{
    m_server->setAuthenticator(
            [this](const QtNotif::HandshakeRequest &request) { return authenticate(request); });
    // Only users take part, and only in the server's rooms: an anonymous client may call
    // "login" and "rooms", and listen to nothing ("listen_denied"). The fixed room list also
    // bounds what clients can make the server keep (a history per room).
    m_server->setListenAuthorizer(
            [this](const Identity &identity, const QString &, const QJsonValue &room) {
                return !identity.isAnonymous() && m_options.rooms.contains(room.toString());
            });

    // Each listener receives the event through eventFor(): prepare runs once per recipient, at
    // notify time, so blocking someone takes effect on the next message.
    m_messages = new MessagesNotifier(m_server, u"messages"_s,
                                      [this](const Identity &recipient, const ChatEvent &event) {
                                          return eventFor(recipient.userId(), event);
                                      });
    // Event ids count up from a random multiple of 2^32: the servers of a cluster (and a server
    // after a restart) each number their events in a range of their own, so that clients can
    // tell apart messages from different servers sent in the same millisecond. Below 2^53, as
    // JSON numbers must stay to be exact everywhere.
    m_lastEventId = qint64(QRandomGenerator::global()->bounded(1 << 20)) << 32;
    m_typing = new TypingNotifier(m_server, u"typing"_s);
    m_members = new MembersNotifier(
            m_server, u"members"_s,
            [this](const Identity &, const QString &change, MembersNotifier::Done done) {
                currentMembers(change.section(u'|', 1, -1), change, std::move(done));
            });

    // Presence: the members of a room are the users listening to its messages, whatever makes
    // that change (join, leave, kick, disconnect, a new login).
    const auto membersChanged = [this](ConnectionId, const Identity &, const QJsonValue &room) {
        publishMembers(room.toString());
    };
    connect(m_messages, &AbstractNotifier::listenerAdded, this, membersChanged);
    connect(m_messages, &AbstractNotifier::listenerRemoved, this, membersChanged);
    // A joining client listens to "members" after "messages" (after a reconnection too), so
    // it missed the update its own arrival caused: publish the list again once it listens.
    connect(m_members, &AbstractNotifier::listenerAdded, this, membersChanged);

    m_server->setHandler(u"login"_s, std::bind_front(&ChatServer::handleLogin, this));
    m_server->setHandler(u"rooms"_s, std::bind_front(&ChatServer::handleRooms, this));
    m_server->setHandler(u"send"_s, std::bind_front(&ChatServer::handleSend, this));
    m_server->setHandler(u"typing"_s, std::bind_front(&ChatServer::handleTyping, this));
    m_server->setHandler(u"history"_s, std::bind_front(&ChatServer::handleHistory, this));
    m_server->setHandler(u"members"_s, std::bind_front(&ChatServer::handleMembers, this));
    m_server->setHandler(u"block"_s, std::bind_front(&ChatServer::handleBlock, this));
    m_server->setHandler(u"kick"_s, std::bind_front(&ChatServer::handleKick, this));

    connect(m_server, &QtNotif::Server::clientConnected, this,
            [](ConnectionId id, const Identity &identity) {
                qCDebug(lcChat) << "connection" << id << "as" << identity.userId();
            });
    connect(m_server, &QtNotif::Server::clientRefused, this,
            [](const QString &reason) { qCInfo(lcChat) << "refused a client:" << reason; });
}

ChatServer::~ChatServer()
{
    // Closing removes every listen; without these connections, each removal would publish a
    // member list to clients that are all leaving anyway.
    m_messages->disconnect(this);
    m_members->disconnect(this);
    m_server->close();
}

bool ChatServer::listen(const QHostAddress &address, quint16 port)
{
    return m_server->listen(address, port);
}

QUrl ChatServer::url() const
{
    return m_server->serverUrl();
}

QString ChatServer::errorString() const
{
    return m_server->errorString();
}

QtNotif::Server *ChatServer::server() const
{
    return m_server;
}

QString ChatServer::tokenFor(const QString &name) const
{
    const QByteArray mac = QMessageAuthenticationCode::hash(name.toUtf8(), m_options.secret,
                                                            QCryptographicHash::Sha256);
    return name + u'.' + QString::fromLatin1(mac.toHex());
}

bool ChatServer::isValidName(const QString &name)
{
    static const QRegularExpression pattern(
            QRegularExpression::anchoredPattern(u"[A-Za-z0-9_-]{1,32}"_s));
    return pattern.match(name).hasMatch();
}

QStringList ChatServer::localMembers(const QString &room) const
{
    return m_messages->localListeningUsers(room);
}

QStringList ChatServer::blockedBy(const QString &user) const
{
    QStringList names = m_blocked.value(user).values();
    names.sort();
    return names;
}

// DEMO ONLY, NOT FOR PRODUCTION: the token proves that this server handed it out, nothing
// more. It never expires and cannot be revoked, and "login" gives one to whoever asks.
AuthResult ChatServer::authenticate(const QtNotif::HandshakeRequest &request) const
{
    const QString token = QString::fromUtf8(request.bearerToken());
    if (token.isEmpty())
        return AuthResult::anonymous(); // may log in with the call "login"
    const QString name = token.section(u'.', 0, 0);
    if (!isValidName(name) || !equalInConstantTime(token.toUtf8(), tokenFor(name).toUtf8()))
        return AuthResult::refuse(u"invalid token: log in again"_s);
    return AuthResult::accept(identityFor(name));
}

Identity ChatServer::identityFor(const QString &name) const
{
    // Attributes travel with the identity to the handlers (kick checks "moderator") and to
    // the client, which can show moderator tools.
    return Identity::user(name, { { u"moderator"_s, m_options.moderators.contains(name) } });
}

std::optional<QVariantMap> ChatServer::eventFor(const QString &user, const ChatEvent &event) const
{
    // Whoever blocked the sender gets nothing; what the server itself says is never blocked.
    if (!event.isSystem() && m_blocked.value(user).contains(event.from))
        return std::nullopt;
    return QVariantMap{ { u"id"_s, event.id },
                        { u"room"_s, event.room },
                        { u"from"_s, event.from },
                        { u"text"_s, event.text },
                        { u"time"_s, event.time },
                        { u"kind"_s, event.kind },
                        { u"mentionsMe"_s, event.mentions.contains(user) } };
}

ChatEvent ChatServer::newEvent(const QString &room, const QString &from, const QString &text,
                               const QString &kind)
{
    return ChatEvent{ .id = ++m_lastEventId,
                      .room = room,
                      .from = from,
                      .text = text,
                      .time = QDateTime::currentDateTimeUtc().toString(Qt::ISODateWithMs),
                      .kind = kind,
                      .mentions = mentionsIn(text) };
}

void ChatServer::post(const ChatEvent &event, const NotFor &notFor)
{
    QList<ChatEvent> &history = m_history[event.room];
    history.append(event);
    const qsizetype excess = history.size() - std::max(m_options.historySize, 0);
    if (excess > 0)
        history.remove(0, excess);
    m_messages->notify(event.room, event, notFor);
}

void ChatServer::publishMembers(const QString &room)
{
    // Presence across a cluster: the notification only says that the members changed, and
    // each node's prepare asks the whole cluster who they are when it arrives. A node asking
    // when its own listeners change and publishing the list could have its list overtaken by
    // an older one from another node; asking on arrival, the last notification a client gets
    // carries a list made after the last change.
    const QString change = m_server->nodeId() + u'/' + QString::number(++m_lastMembersChange);
    m_members->notify(room, change + u'|' + room);
}

void ChatServer::currentMembers(const QString &room, const QString &change,
                                MembersNotifier::Done done)
{
    // prepare runs for every recipient of one notification in one go: they share a query.
    QList<MembersNotifier::Done> &waiting = m_membersQueries[change];
    waiting.append(std::move(done));
    if (waiting.size() > 1)
        return;
    m_messages->listeningUsers(room).then(this, [this, change](const QStringList &members) {
        const QList<MembersNotifier::Done> recipients = m_membersQueries.take(change);
        for (const MembersNotifier::Done &give : recipients)
            give(QVariantMap{ { u"members"_s, members } });
    });
}

void ChatServer::handleLogin(const Request &request)
{
    const QString name = request.payload()[u"name"].toString();
    if (!isValidName(name))
        return request.fail(u"invalid_name"_s,
                            u"a name is 1 to 32 characters among A-Z a-z 0-9 _ -"_s);
    const Identity identity = identityFor(name);
    // The live connection becomes that user: the SDK drops its listens (they were authorised
    // for the old identity) and the client library listens again by itself. Logging in again
    // under the same name changes nothing, so the listens stay.
    if (request.identity() != identity)
        m_server->setIdentity(request.connection(), identity);
    qCInfo(lcChat) << "connection" << request.connection() << "logged in as" << name;
    // The client keeps the token for its reconnections, which the authenticator checks.
    request.reply(QJsonObject{ { u"user"_s, name }, { u"token"_s, tokenFor(name) } });
}

void ChatServer::handleRooms(const Request &request)
{
    request.reply(QJsonArray::fromStringList(m_options.rooms));
}

void ChatServer::handleSend(const Request &request)
{
    if (!isLoggedIn(request))
        return;
    const QString room = request.payload()[u"room"].toString();
    const QString text = request.payload()[u"text"].toString();
    if (!m_messages->localListeners(room).contains(request.connection()))
        return request.fail(u"not_in_room"_s, u"join the room before sending to it"_s);
    if (text.trimmed().isEmpty() || text.size() > MaxTextLength)
        return request.fail(u"invalid_text"_s, u"a message is 1 to 2000 characters"_s);

    const QString user = request.identity().userId();
    const ChatEvent event = newEvent(room, user, text, u"message"_s);
    // Everyone in the room but this window, which shows its message at once; the user's other
    // windows receive it like everyone else.
    post(event, request.me());
    // Sending ends typing.
    m_typing->notify(room, typingNotification(user, false), request.me());
    request.reply(QJsonObject{ { u"id"_s, event.id }, { u"time"_s, event.time } });
}

void ChatServer::handleTyping(const Request &request)
{
    if (!isLoggedIn(request))
        return;
    const QString room = request.payload()[u"room"].toString();
    const bool typing = request.payload()[u"typing"].toBool();
    m_typing->notify(room, typingNotification(request.identity().userId(), typing), request.me());
    request.reply();
}

void ChatServer::handleHistory(const Request &request)
{
    if (!isLoggedIn(request))
        return;
    const QString user = request.identity().userId();
    const QList<ChatEvent> history = m_history.value(request.payload()[u"room"].toString());
    QJsonArray events;
    for (const ChatEvent &event : history) {
        // Through the same prepare as live delivery: blocked senders left out, mentions marked.
        if (const std::optional<QVariantMap> received = eventFor(user, event))
            events.append(QJsonObject::fromVariantMap(*received));
    }
    request.reply(events);
}

void ChatServer::handleMembers(const Request &request)
{
    m_messages->listeningUsers(request.payload()[u"room"].toString())
            .then(this, [request](const QStringList &members) {
                request.reply(QJsonArray::fromStringList(members));
            });
}

void ChatServer::handleBlock(const Request &request)
{
    if (!isLoggedIn(request))
        return;
    const QString user = request.identity().userId();
    const QString other = request.payload()[u"user"].toString();
    if (!isValidName(other))
        return request.fail(u"invalid_name"_s, u"no such user name"_s);
    if (request.payload()[u"blocked"].toBool(true)) {
        // A bound on what one user can make the server hold.
        if (m_blocked.value(user).size() >= MaxBlockedUsers
            && !m_blocked.value(user).contains(other))
            return request.fail(u"too_many_blocks"_s,
                                u"at most %1 blocked users"_s.arg(MaxBlockedUsers));
        m_blocked[user].insert(other);
    } else
        m_blocked[user].remove(other);
    request.reply(QJsonObject{ { u"blocked"_s, QJsonArray::fromStringList(blockedBy(user)) } });
}

void ChatServer::handleKick(const Request &request)
{
    if (!isLoggedIn(request))
        return;
    const Identity moderator = request.identity();
    if (!moderator.attribute(u"moderator"_s).toBool())
        return request.fail(u"forbidden"_s, u"only moderators may remove users"_s);
    const QString room = request.payload()[u"room"].toString();
    const QString user = request.payload()[u"user"].toString();

    // Every window of the user, on every node of a cluster, leaves the room and is told so
    // ("unlistened", reason "user"); presence follows from listenerRemoved. The client no
    // longer wants the keys: it does not listen to them again after a reconnection.
    m_typing->unlistenUser(user, room);
    m_members->unlistenUser(user, room);
    m_messages->unlistenUser(user, room)
            .then(this, [this, request, moderator, room, user](int removed) {
                if (removed > 0) {
                    qCInfo(lcChat) << moderator.userId() << "removed" << user << "from" << room;
                    post(newEvent(room, QString(),
                                  u"%1 was removed by %2"_s.arg(user, moderator.userId()),
                                  u"system"_s),
                         NotFor::nobody());
                }
                request.reply(QJsonObject{ { u"removed"_s, removed } });
            });
}

} // namespace ChatDemo
