// The client side of the chat demo over one QtNotif::Client: logging in, rooms, messages,
// typing and members, as described in demo-app/README.md. Used by the widgets window and the
// headless driver; it knows nothing about widgets.
#pragma once

#include <QtNotif/client.h>

#include <QtCore/QObject>
#include <QtCore/QSet>
#include <QtCore/QString>
#include <QtCore/QStringList>
#include <QtCore/QTimer>
#include <QtCore/QUrl>
#include <QtCore/QVariantMap>

#include <chrono>
#include <map>

namespace ChatDemo {

// One user's chat session with one server.
//
// open() connects anonymously and calls "login" once connected; the token the server returns
// is set on the Client, so that the Client's own reconnections are authenticated at the
// handshake. join() may be called at any time: the session listens to the room once it is
// logged in. After a reconnection the Client listens again by itself; the session only fetches
// each room's history again, and never reports a message twice (messages are told apart by
// their id and time).
//
// Failures of calls and of the connection are reported by errorOccurred(); nothing throws and
// nothing blocks. A ChatSession and its Client live in the thread that created the session.
class ChatSession : public QObject
{
    Q_OBJECT
    Q_PROPERTY(QUrl url READ url CONSTANT)
    Q_PROPERTY(QString userName READ userName CONSTANT)
    Q_PROPERTY(State state READ state NOTIFY stateChanged)
    Q_PROPERTY(QString errorString READ errorString NOTIFY errorOccurred)
    Q_PROPERTY(bool moderator READ isModerator NOTIFY moderatorChanged)
    Q_PROPERTY(QStringList rooms READ rooms NOTIFY roomsChanged)
    Q_PROPERTY(QStringList joinedRooms READ joinedRooms NOTIFY joinedRoomsChanged)
    Q_PROPERTY(QStringList blockedUsers READ blockedUsers NOTIFY blockedUsersChanged)
public:
    enum class State {
        Disconnected, // not open(), closed, or refused
        Connecting,   // connecting, or connected and logging in
        Connected,    // logged in as userName(): calls and listens work
        Reconnecting, // the connection was lost; the Client is trying again
    };
    Q_ENUM(State)

    // A session of userName with the server at url, not open yet.
    ChatSession(const QUrl &url, const QString &userName, QObject *parent = nullptr);
    ~ChatSession() override;

    QUrl url() const;
    QString userName() const;
    State state() const;
    // Why the last thing failed (a lost connection, a refused call); empty until then.
    QString errorString() const;
    // Whether the server made this user a moderator (the identity's "moderator" attribute).
    bool isModerator() const;
    // The server's rooms, as its "rooms" call answered after the login.
    QStringList rooms() const;
    // The rooms joined, sorted, including those still waiting for the login.
    QStringList joinedRooms() const;
    bool isJoined(const QString &room) const;
    // The members of a joined room, sorted, as last announced by the server.
    QStringList members(const QString &room) const;
    // The users typing in a joined room, sorted: never this user, blocked users or non-members.
    QStringList typists(const QString &room) const;
    // The users this user blocked, as the server's last "block" reply said.
    QStringList blockedUsers() const;
    bool isBlocked(const QString &user) const;

    // How often a typing user says so again (2 s), and after how long without a keystroke
    // typing stops by itself (3 s). Receivers count on the repeat: it is what keeps "bob is
    // typing..." alive. Tests shorten both.
    void setTypingIntervals(std::chrono::milliseconds repeat, std::chrono::milliseconds idle);

    // The connection, owned by the session; for state and diagnostics, not for chat calls.
    QtNotif::Client *client() const;

public Q_SLOTS:
    // Connects and logs in; does nothing when already open.
    void open();
    // Closes the connection. The joined rooms stay joined: a later open() rejoins them.
    void close();

    // Listens to the room's messages, typing and members (once logged in), then reports its
    // history with messageReceived() and its members with membersChanged().
    void join(const QString &room);
    // Stops listening to the room and forgets its messages: a later join() reports its
    // history again.
    void leave(const QString &room);

    // Sends text to a joined room. The server does not send users their own messages, so
    // the session reports it with messageReceived() when the server has accepted it.
    void send(const QString &room, const QString &text);
    // What the user typed in the room's input line: "/kick name", "/block name",
    // "/unblock name", or text to send. Returns false, and reports errorOccurred(), for an
    // unknown or incomplete command, so that the caller can leave it in the input to fix it.
    bool submit(const QString &room, const QString &input);

    // Called on every edit (typing true) or when the input is cleared (false). The server is
    // told "typing" at most once per repeat interval, and "not typing" after the idle interval
    // or at once when typing is false; sending a message stops typing too.
    void setTyping(const QString &room, bool typing);

    // Blocks (or unblocks) messages from user: the server stops (or starts again) sending them.
    void setBlocked(const QString &user, bool blocked);
    // Removes user from the room (moderators only; others get errorOccurred()).
    void kick(const QString &room, const QString &user);

Q_SIGNALS:
    void stateChanged(ChatDemo::ChatSession::State state);
    void errorOccurred(const QString &message);
    void moderatorChanged(bool moderator);
    void roomsChanged(const QStringList &rooms);
    void joinedRoomsChanged(const QStringList &rooms);
    void blockedUsersChanged(const QStringList &users);
    // A message of a joined room: {"id", "room", "from", "text", "time", "kind", "mentionsMe"}.
    // History comes first, oldest first, then live messages; each message is reported once.
    void messageReceived(const QString &room, const QVariantMap &message);
    // The room's history, fetched at a join or after a reconnection, has been reported by
    // messageReceived(); the messages after this signal are live.
    void historyLoaded(const QString &room);
    void membersChanged(const QString &room, const QStringList &members);
    void typingChanged(const QString &room, const QStringList &typists);
    // A moderator removed this user from the room; the room is no longer joined.
    void removedFromRoom(const QString &room);

private:
    struct Room
    {
        // Messages already reported, by id and time: a history fetched again after a
        // reconnection repeats what was shown, and a live message can come before the history
        // that holds it.
        QSet<QString> seenKeys;
        // Live messages held back while the history is loading, so that the order is kept.
        QList<QVariantMap> held;
        bool loadingHistory = false;
        int historyRequest = 0; // tells a stale history reply (from before a leave) from the last
        QStringList members;
        QSet<QString> typing; // everyone the server said is typing; typists() filters it
        QStringList typists;  // what typingChanged() last reported
        // Outgoing typing state: while repeatTimer runs, "typing" is not sent again.
        bool announcedTyping = false;
        QTimer repeatTimer;
        QTimer idleTimer;
    };

    Room *findRoom(const QString &room);
    const Room *findRoom(const QString &room) const;
    void updateState();
    void reportError(const QString &message);
    void onClientStateChanged();
    void onConnected();
    void onAuthenticationRefused();
    void login();
    void onLoggedIn();
    void fetchRooms();
    void listenToRoom(const QString &room);
    void fetchRoom(const QString &room);
    void forgetRoom(const QString &room);
    void onMessage(const QString &room, const QVariantMap &message);
    void deliver(const QString &room, Room &state, const QVariantMap &message);
    void setMembers(const QString &room, const QStringList &members);
    void updateTypists(const QString &room);
    void sendTyping(const QString &room, bool typing);
    void stopTyping(Room &state);
    void onUnlistened(const QString &room, bool byModerator);
    void onListenFailed(const QString &room, const QString &message);

    QtNotif::Client *m_client;
    const QString m_userName;
    State m_state = State::Disconnected;
    bool m_loggedIn = false;
    bool m_moderator = false;
    bool m_closing = false; // in close()
    QString m_errorString;
    QStringList m_rooms;
    QStringList m_blocked;
    std::map<QString, Room> m_joined; // std::map: Room holds timers, which cannot move
    std::chrono::milliseconds m_typingRepeat{ 2000 };
    std::chrono::milliseconds m_typingIdle{ 3000 };
};

} // namespace ChatDemo
