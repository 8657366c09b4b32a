#include "chatsession.h"

#include <QtNotif/callreply.h>
#include <QtNotif/clientnotifier.h>

#include <QtCore/QJsonArray>
#include <QtCore/QJsonObject>
#include <QtCore/QScopedValueRollback>

#include <utility>

using namespace Qt::StringLiterals;

namespace ChatDemo {

namespace {

// The three notifiers of a room (see demo-app/README.md), all keyed by the room's name.
const QString MessagesNotifier = u"messages"_s;
const QString TypingNotifier = u"typing"_s;
const QString MembersNotifier = u"members"_s;

QStringList toStringList(const QJsonValue &array)
{
    QStringList list;
    const QJsonArray values = array.toArray();
    for (const QJsonValue &value : values)
        list.append(value.toString());
    return list;
}

QStringList sorted(QStringList list)
{
    list.sort();
    return list;
}

// The server's message when it has one, else its error code ("not_in_room", "timeout", ...).
QString describe(const QtNotif::CallReply &reply)
{
    return reply.errorMessage().isEmpty() ? reply.errorCode() : reply.errorMessage();
}

// The connection ended before the reply: the reconnection does the call again, so this is
// not worth telling the user about.
bool isConnectionLoss(const QtNotif::CallReply &reply)
{
    return reply.errorCode() == u"connection_lost"_s || reply.errorCode() == u"not_connected"_s;
}

} // namespace

ChatSession::ChatSession(const QUrl &url, const QString &userName, QObject *parent)
    : QObject(parent), m_client(new QtNotif::Client(this)), m_userName(userName)
{
    m_client->setUrl(url);

    connect(m_client, &QtNotif::Client::stateChanged, this, &ChatSession::onClientStateChanged);
    connect(m_client, &QtNotif::Client::connected, this, &ChatSession::onConnected);
    connect(m_client, &QtNotif::Client::identityChanged, this, [this] {
        const QVariantMap attributes = m_client->identity().value(u"attributes"_s).toMap();
        const bool moderator = attributes.value(u"moderator"_s).toBool();
        if (moderator == m_moderator)
            return;
        m_moderator = moderator;
        Q_EMIT moderatorChanged(m_moderator);
    });
    connect(m_client, &QtNotif::Client::errorOccurred, this, [this](QtNotif::Client::Error error) {
        if (error == QtNotif::Client::Error::AuthenticationError && !m_client->token().isEmpty())
            onAuthenticationRefused();
        else
            reportError(m_client->errorString());
    });

    QtNotif::ClientNotifier *messages = m_client->notifier(MessagesNotifier);
    connect(messages, &QtNotif::ClientNotifier::clientEvent, this,
            [this](const QVariant &room, const QVariant &message) {
                onMessage(room.toString(), message.toMap());
            });
    connect(messages, &QtNotif::ClientNotifier::unlistened, this,
            [this](const QVariant &room, QtNotif::ClientNotifier::UnlistenReason reason) {
                onUnlistened(room.toString(),
                             reason == QtNotif::ClientNotifier::UnlistenReason::User);
            });

    QtNotif::ClientNotifier *typing = m_client->notifier(TypingNotifier);
    connect(typing, &QtNotif::ClientNotifier::clientEvent, this,
            [this](const QVariant &key, const QVariant &notification) {
                const QString room = key.toString();
                Room *state = findRoom(room);
                if (!state)
                    return;
                const QVariantMap event = notification.toMap();
                const QString user = event.value(u"user"_s).toString();
                if (event.value(u"typing"_s).toBool())
                    state->typing.insert(user);
                else
                    state->typing.remove(user);
                updateTypists(room);
            });

    QtNotif::ClientNotifier *members = m_client->notifier(MembersNotifier);
    connect(members, &QtNotif::ClientNotifier::clientEvent, this,
            [this](const QVariant &room, const QVariant &notification) {
                setMembers(room.toString(),
                           notification.toMap().value(u"members"_s).toStringList());
            });

    // A refused listen (listen_denied, ...) leaves the wanted set: the room cannot be joined.
    for (QtNotif::ClientNotifier *notifier : { messages, typing, members }) {
        connect(notifier, &QtNotif::ClientNotifier::listenFailed, this,
                [this](const QVariant &room, const QString &code, const QString &message) {
                    onListenFailed(room.toString(), message.isEmpty() ? code : message);
                });
    }
}

ChatSession::~ChatSession() = default;

QUrl ChatSession::url() const
{
    return m_client->url();
}

QString ChatSession::userName() const
{
    return m_userName;
}

ChatSession::State ChatSession::state() const
{
    return m_state;
}

QString ChatSession::errorString() const
{
    return m_errorString;
}

bool ChatSession::isModerator() const
{
    return m_moderator;
}

QStringList ChatSession::rooms() const
{
    return m_rooms;
}

QStringList ChatSession::joinedRooms() const
{
    QStringList rooms;
    for (const auto &entry : m_joined)
        rooms.append(entry.first);
    return rooms;
}

bool ChatSession::isJoined(const QString &room) const
{
    return m_joined.contains(room);
}

QStringList ChatSession::members(const QString &room) const
{
    const Room *state = findRoom(room);
    return state ? state->members : QStringList();
}

QStringList ChatSession::typists(const QString &room) const
{
    const Room *state = findRoom(room);
    return state ? state->typists : QStringList();
}

QStringList ChatSession::blockedUsers() const
{
    return m_blocked;
}

bool ChatSession::isBlocked(const QString &user) const
{
    return m_blocked.contains(user);
}

void ChatSession::setTypingIntervals(std::chrono::milliseconds repeat,
                                     std::chrono::milliseconds idle)
{
    Q_ASSERT(repeat.count() > 0 && idle.count() > 0);
    m_typingRepeat = repeat;
    m_typingIdle = idle;
}

QtNotif::Client *ChatSession::client() const
{
    return m_client;
}

void ChatSession::open()
{
    m_client->open();
}

void ChatSession::close()
{
    // The calls still waiting fail at once with "connection_lost": no news to whoever closed.
    const QScopedValueRollback closing(m_closing, true);
    m_client->close();
}

void ChatSession::join(const QString &room)
{
    if (room.isEmpty() || m_joined.contains(room))
        return;
    Room &state = m_joined.try_emplace(room).first->second;
    state.repeatTimer.setSingleShot(true);
    state.idleTimer.setSingleShot(true);
    connect(&state.idleTimer, &QTimer::timeout, this, [this, room] {
        if (Room *state = findRoom(room); state && state->announcedTyping) {
            stopTyping(*state);
            sendTyping(room, false);
        }
    });
    // Anonymous listens are refused: before the login, join() only records the room.
    if (m_loggedIn) {
        listenToRoom(room);
        fetchRoom(room);
    }
    Q_EMIT joinedRoomsChanged(joinedRooms());
}

void ChatSession::leave(const QString &room)
{
    if (!m_joined.contains(room))
        return;
    forgetRoom(room);
    Q_EMIT joinedRoomsChanged(joinedRooms());
}

void ChatSession::send(const QString &room, const QString &text)
{
    Room *state = findRoom(room);
    if (!state) {
        reportError(tr("Join %1 before writing to it.").arg(room));
        return;
    }
    // The server tells the others that this user stopped typing: no "typing false" call.
    stopTyping(*state);
    m_client->call(u"send"_s, QJsonObject{ { u"room"_s, room }, { u"text"_s, text } }, this,
                   [this, room, text](const QtNotif::CallReply &reply) {
                       if (reply.isError()) {
                           reportError(tr("Could not send to %1: %2").arg(room, describe(reply)));
                           return;
                       }
                       // The message as the others receive it, for the sender's own window.
                       const QJsonObject result = reply.result().toObject();
                       onMessage(room,
                                 QVariantMap{ { u"id"_s, result.value(u"id"_s).toVariant() },
                                              { u"room"_s, room },
                                              { u"from"_s, m_userName },
                                              { u"text"_s, text },
                                              { u"time"_s, result.value(u"time"_s).toVariant() },
                                              { u"kind"_s, u"message"_s },
                                              { u"mentionsMe"_s, false } });
                   });
}

bool ChatSession::submit(const QString &room, const QString &input)
{
    const QString text = input.trimmed();
    if (text.isEmpty())
        return false;
    if (!text.startsWith(u'/')) {
        send(room, text);
        return true;
    }
    const QStringList words = text.split(u' ', Qt::SkipEmptyParts);
    const QString command = words.first();
    if (command != u"/kick"_s && command != u"/block"_s && command != u"/unblock"_s) {
        reportError(tr("Unknown command %1: try /kick, /block or /unblock.").arg(command));
        return false;
    }
    if (words.size() != 2) {
        reportError(tr("Usage: %1 name").arg(command));
        return false;
    }
    const QString user = words.at(1);
    if (command == u"/kick"_s)
        kick(room, user);
    else
        setBlocked(user, command == u"/block"_s);
    return true;
}

void ChatSession::setTyping(const QString &room, bool typing)
{
    Room *state = findRoom(room);
    if (!state || !m_loggedIn)
        return;
    if (!typing) {
        if (state->announcedTyping) {
            stopTyping(*state);
            sendTyping(room, false);
        }
        return;
    }
    state->idleTimer.start(m_typingIdle);
    if (state->announcedTyping && state->repeatTimer.isActive())
        return; // said so less than a repeat interval ago
    state->announcedTyping = true;
    state->repeatTimer.start(m_typingRepeat);
    sendTyping(room, true);
}

void ChatSession::setBlocked(const QString &user, bool blocked)
{
    m_client->call(
            u"block"_s, QJsonObject{ { u"user"_s, user }, { u"blocked"_s, blocked } }, this,
            [this, user](const QtNotif::CallReply &reply) {
                if (reply.isError()) {
                    reportError(tr("Could not block or unblock %1: %2").arg(user, describe(reply)));
                    return;
                }
                const QStringList list
                        = sorted(toStringList(reply.result().toObject().value(u"blocked"_s)));
                if (list == m_blocked)
                    return;
                m_blocked = list;
                Q_EMIT blockedUsersChanged(m_blocked);
                // Blocked users do not show as typing either. (Over a copy of the
                // rooms: a slot of typingChanged() may leave one.)
                const QStringList rooms = joinedRooms();
                for (const QString &room : rooms)
                    updateTypists(room);
            });
}

void ChatSession::kick(const QString &room, const QString &user)
{
    m_client->call(u"kick"_s, QJsonObject{ { u"room"_s, room }, { u"user"_s, user } }, this,
                   [this, room, user](const QtNotif::CallReply &reply) {
                       if (reply.errorCode() == u"forbidden"_s)
                           reportError(tr("Only moderators can remove users from a room."));
                       else if (reply.isError())
                           reportError(tr("Could not remove %1: %2").arg(user, describe(reply)));
                       else if (reply.result().toObject().value(u"removed"_s).toInt() == 0)
                           reportError(tr("%1 is not in %2.").arg(user, room));
                   });
}

ChatSession::Room *ChatSession::findRoom(const QString &room)
{
    const auto it = m_joined.find(room);
    return it == m_joined.end() ? nullptr : &it->second;
}

const ChatSession::Room *ChatSession::findRoom(const QString &room) const
{
    const auto it = m_joined.find(room);
    return it == m_joined.end() ? nullptr : &it->second;
}

void ChatSession::updateState()
{
    State state = State::Disconnected;
    switch (m_client->state()) {
    case QtNotif::Client::State::Disconnected:
        state = State::Disconnected;
        break;
    case QtNotif::Client::State::Connecting:
        state = State::Connecting;
        break;
    case QtNotif::Client::State::Connected:
        state = m_loggedIn ? State::Connected : m_state;
        break;
    case QtNotif::Client::State::Reconnecting:
        state = State::Reconnecting;
        break;
    }
    if (state == m_state)
        return;
    m_state = state;
    Q_EMIT stateChanged(m_state);
}

void ChatSession::reportError(const QString &message)
{
    if (m_closing)
        return;
    m_errorString = message;
    Q_EMIT errorOccurred(message);
}

void ChatSession::onClientStateChanged()
{
    // Connected: onConnected() follows, and knows whether a login is needed. Until then the
    // session stays Connecting or Reconnecting.
    if (m_client->state() == QtNotif::Client::State::Connected)
        return;
    m_loggedIn = false;
    // Whatever was announced went with the connection.
    for (auto &entry : m_joined)
        stopTyping(entry.second);
    updateState();
}

void ChatSession::onConnected()
{
    // With the token of an earlier login, the handshake already made this connection the user.
    if (m_client->userId() == m_userName)
        onLoggedIn();
    else
        login();
}

void ChatSession::onAuthenticationRefused()
{
    // The server no longer takes the token (it restarted with another secret, say): connect
    // anonymously and log in again. Anonymous listens would be refused, and a refused listen
    // leaves the wanted set, so the rooms are listened to again only after the login.
    reportError(tr("%1; logging in again").arg(m_client->errorString()));
    m_client->setToken(QString());
    const QStringList rooms = joinedRooms();
    for (const QString &room : rooms) {
        for (const QString &name : { MessagesNotifier, TypingNotifier, MembersNotifier })
            m_client->notifier(name)->unlisten(room);
    }
    m_client->open();
}

void ChatSession::login()
{
    m_client->call(u"login"_s, QJsonObject{ { u"name"_s, m_userName } }, this,
                   [this](const QtNotif::CallReply &reply) {
                       if (isConnectionLoss(reply))
                           return; // the next connection logs in again
                       if (reply.isError()) {
                           // invalid_name: trying again would not help.
                           m_client->close();
                           reportError(tr("Login refused: %1").arg(describe(reply)));
                           return;
                       }
                       // From now on the Client's reconnections are this user by themselves.
                       m_client->setToken(reply.result().toObject().value(u"token"_s).toString());
                       onLoggedIn();
                   });
}

void ChatSession::onLoggedIn()
{
    m_loggedIn = true;
    updateState();
    fetchRooms();
    // After a reconnection the Client listened again by itself (listening twice is harmless);
    // only what was missed meanwhile has to be fetched.
    const QStringList rooms = joinedRooms();
    for (const QString &room : rooms) {
        listenToRoom(room);
        fetchRoom(room);
    }
}

void ChatSession::fetchRooms()
{
    m_client->call(u"rooms"_s, QJsonValue(), this, [this](const QtNotif::CallReply &reply) {
        if (reply.isError()) {
            if (!isConnectionLoss(reply))
                reportError(tr("Could not list the rooms: %1").arg(describe(reply)));
            return;
        }
        const QStringList rooms = toStringList(reply.result());
        if (rooms == m_rooms)
            return;
        m_rooms = rooms;
        Q_EMIT roomsChanged(m_rooms);
    });
}

void ChatSession::listenToRoom(const QString &room)
{
    for (const QString &name : { MessagesNotifier, TypingNotifier, MembersNotifier })
        m_client->notifier(name)->listen(room);
}

void ChatSession::fetchRoom(const QString &room)
{
    Room *state = findRoom(room);
    Q_ASSERT(state);
    state->loadingHistory = true;
    const int request = ++state->historyRequest;

    // Sent after the listens, so the history holds everything before the first live message
    // (the server handles a connection's frames in order); overlaps are dropped in deliver().
    m_client->call(u"history"_s, QJsonObject{ { u"room"_s, room } }, this,
                   [this, room, request](const QtNotif::CallReply &reply) {
                       // Each step looks the room up again: a slot of messageReceived may leave it.
                       const auto current = [this, room, request] {
                           Room *state = findRoom(room);
                           return state && state->historyRequest == request ? state : nullptr;
                       };
                       if (!current())
                           return; // left, or a newer history is on its way
                       if (reply.isError()) {
                           if (!isConnectionLoss(reply)) // else the reconnection fetches it again
                               reportError(tr("Could not load the history of %1: %2")
                                                   .arg(room, describe(reply)));
                       } else {
                           const QJsonArray history = reply.result().toArray();
                           for (const QJsonValue &entry : history) {
                               if (Room *state = current())
                                   deliver(room, *state, entry.toObject().toVariantMap());
                           }
                           if (current())
                               Q_EMIT historyLoaded(room);
                       }
                       // Then the live messages that came meanwhile.
                       Room *state = current();
                       if (!state)
                           return;
                       state->loadingHistory = false;
                       const QList<QVariantMap> held = std::exchange(state->held, {});
                       for (const QVariantMap &message : held) {
                           if (Room *state = current())
                               deliver(room, *state, message);
                       }
                   });
    m_client->call(u"members"_s, QJsonObject{ { u"room"_s, room } }, this,
                   [this, room](const QtNotif::CallReply &reply) {
                       if (!reply.isError())
                           setMembers(room, toStringList(reply.result()));
                   });
}

void ChatSession::forgetRoom(const QString &room)
{
    for (const QString &name : { MessagesNotifier, TypingNotifier, MembersNotifier })
        m_client->notifier(name)->unlisten(room);
    m_joined.erase(room);
}

void ChatSession::onMessage(const QString &room, const QVariantMap &message)
{
    Room *state = findRoom(room);
    if (!state)
        return;
    if (state->loadingHistory)
        state->held.append(message);
    else
        deliver(room, *state, message);
}

void ChatSession::deliver(const QString &room, Room &state, const QVariantMap &message)
{
    // The id with the time: ids count from 1 again when the server restarts, and a new
    // message must not pass for one shown before the restart.
    const QString key
            = message.value(u"id"_s).toString() + u'@' + message.value(u"time"_s).toString();
    if (state.seenKeys.contains(key))
        return;
    state.seenKeys.insert(key);
    Q_EMIT messageReceived(room, message);
}

void ChatSession::setMembers(const QString &room, const QStringList &members)
{
    Room *state = findRoom(room);
    if (!state)
        return;
    const QStringList list = sorted(members);
    // Someone who left is not typing any more, whatever the last typing event said.
    state->typing.removeIf([&list](const QString &user) { return !list.contains(user); });
    if (list != state->members) {
        state->members = list;
        Q_EMIT membersChanged(room, list);
    }
    updateTypists(room);
}

void ChatSession::updateTypists(const QString &room)
{
    Room *state = findRoom(room);
    if (!state)
        return;
    QStringList typists;
    for (const QString &user : std::as_const(state->typing)) {
        // Typing events may come before the members list that holds their user.
        if (user != m_userName && state->members.contains(user) && !m_blocked.contains(user))
            typists.append(user);
    }
    typists.sort();
    if (typists == state->typists)
        return;
    state->typists = typists;
    Q_EMIT typingChanged(room, typists);
}

void ChatSession::sendTyping(const QString &room, bool typing)
{
    m_client->call(u"typing"_s, QJsonObject{ { u"room"_s, room }, { u"typing"_s, typing } }, this,
                   [this, room](const QtNotif::CallReply &reply) {
                       if (reply.isError() && !isConnectionLoss(reply))
                           reportError(tr("Could not say you are typing in %1: %2")
                                               .arg(room, describe(reply)));
                   });
}

void ChatSession::stopTyping(Room &state)
{
    state.announcedTyping = false;
    state.repeatTimer.stop();
    state.idleTimer.stop();
}

void ChatSession::onUnlistened(const QString &room, bool byModerator)
{
    if (!m_joined.contains(room))
        return; // left by this session: the unlisten crossed the server's
    // The server removed the three listens; unlistening those still wanted is harmless.
    forgetRoom(room);
    Q_EMIT joinedRoomsChanged(joinedRooms());
    if (byModerator)
        Q_EMIT removedFromRoom(room);
    else
        reportError(tr("The server closed %1.").arg(room));
}

void ChatSession::onListenFailed(const QString &room, const QString &message)
{
    if (!m_joined.contains(room))
        return;
    forgetRoom(room);
    Q_EMIT joinedRoomsChanged(joinedRooms());
    reportError(tr("Could not join %1: %2").arg(room, message));
}

} // namespace ChatDemo
