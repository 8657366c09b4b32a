// Two scripted users of the chat demo, alice (a moderator) and bob, against a running server:
//   qtnotif-chat-headless --url ws://127.0.0.1:8080
//
// Each prints what it receives, as "[alice] ..." and "[bob] ...". The script is a list of steps;
// a step starts when the events the previous one waited for have arrived, never after a sleep.
// Exits 0 once every step is done, 1 as soon as a step takes more than 10 s or something
// arrives that must not.
#include "chatsession.h"

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QScopedValueRollback>
#include <QtCore/QTextStream>
#include <QtCore/QTimer>

#include <algorithm>
#include <functional>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;

using ChatDemo::ChatSession;

namespace {

const QString Room = u"lobby"_s;
const QString UnheardText = u"can you hear me?"_s;

// One scripted user: its session and what it has received so far.
struct User
{
    ChatSession *session = nullptr;
    QList<QVariantMap> messages;
    QStringList members;
    QStringList typists;
    QStringList blocked;
    bool historyLoaded = false; // messages before are from earlier runs: not recorded
    int earlierMessages = 0;
    bool removed = false;

    bool hasMessage(const QString &from, const QString &text) const
    {
        return std::any_of(messages.cbegin(), messages.cend(), [&](const QVariantMap &message) {
            return message.value(u"from"_s) == from && message.value(u"text"_s) == text;
        });
    }
};

class Script : public QObject
{
public:
    explicit Script(const QUrl &url);
    // Starts the first step; the application quits with the outcome.
    void start();

private:
    struct Step
    {
        QString name;
        std::function<void()> action;     // what the step does
        std::function<bool()> isComplete; // whether what it waits for has arrived
        QString conclusion = {};          // printed once it is complete
    };

    void watch(const QString &name, User &user);
    void print(const QString &name, const QString &line);
    // Called after every event: finishes steps as long as their events are there.
    void advance();
    void fail(const QString &reason);

    QTextStream m_out{ stdout };
    User m_alice;
    User m_bob;
    QList<Step> m_steps;
    qsizetype m_current = -1;
    QTimer m_stepTimer;
    bool m_finished = false;
    bool m_advancing = false;
};

Script::Script(const QUrl &url)
{
    m_alice.session = new ChatSession(url, u"alice"_s, this);
    m_bob.session = new ChatSession(url, u"bob"_s, this);
    watch(u"alice"_s, m_alice);
    watch(u"bob"_s, m_bob);

    // 10 s per step: everything happens on one machine, a step takes milliseconds.
    m_stepTimer.setSingleShot(true);
    m_stepTimer.setInterval(10s);
    connect(&m_stepTimer, &QTimer::timeout, this, [this] { fail(u"timed out after 10 s"_s); });

    ChatSession *alice = m_alice.session;
    ChatSession *bob = m_bob.session;
    m_steps = {
        { u"alice and bob log in and join lobby"_s,
          [=] {
              for (ChatSession *session : { alice, bob }) {
                  session->join(Room);
                  session->open();
              }
          },
          [this] {
              // Each sees the other: both listen to the room, its typing and its members. And
              // the room's history (from earlier runs against this server) is behind them.
              return m_alice.members.contains(u"bob"_s) && m_bob.members.contains(u"alice"_s)
                     && m_alice.historyLoaded && m_bob.historyLoaded;
          } },
        { u"bob starts typing"_s, [=] { bob->setTyping(Room, true); },
          [this] { return m_alice.typists == QStringList{ u"bob"_s }; } },
        { u"bob says \"hi alice\""_s, [=] { bob->send(Room, u"hi alice"_s); },
          [this] {
              return m_alice.hasMessage(u"bob"_s, u"hi alice"_s)
                     && m_bob.hasMessage(u"bob"_s, u"hi alice"_s);
          } },
        { u"alice says \"hello @bob\""_s, [=] { alice->send(Room, u"hello @bob"_s); },
          [this] {
              const auto mentionsBob = [](const QVariantMap &message) {
                  return message.value(u"text"_s) == u"hello @bob"_s
                         && message.value(u"mentionsMe"_s).toBool();
              };
              return m_alice.hasMessage(u"alice"_s, u"hello @bob"_s)
                     && std::any_of(m_bob.messages.cbegin(), m_bob.messages.cend(), mentionsBob);
          } },
        { u"bob blocks alice"_s, [=] { bob->setBlocked(u"alice"_s, true); },
          [this] { return m_bob.blocked.contains(u"alice"_s); } },
        { u"alice says \"can you hear me?\""_s, [=] { alice->send(Room, UnheardText); },
          // Alice has it once the server took it, which is when it was sent to bob, or not.
          [this] { return m_alice.hasMessage(u"alice"_s, UnheardText); } },
        { u"alice removes bob from lobby"_s, [=] { alice->kick(Room, u"bob"_s); },
          // The removal reaches bob after the message would have: from alice's server, in a
          // cluster too, where that server publishes both, in order, and bob's server handles
          // them in that order. So once bob is removed, the message is not coming (watch()
          // checks that it never came).
          [this] {
              return m_bob.removed
                     && std::any_of(m_alice.messages.cbegin(), m_alice.messages.cend(),
                                    [](const QVariantMap &message) {
                                        return message.value(u"kind"_s) == u"system"_s;
                                    });
          },
          u"bob did not receive \"can you hear me?\""_s },
        // Blocks outlive the run on the server: the next run starts unblocked.
        { u"bob unblocks alice"_s, [=] { bob->setBlocked(u"alice"_s, false); },
          [this] { return m_bob.blocked.isEmpty(); } },
    };
}

void Script::start()
{
    advance();
}

void Script::watch(const QString &name, User &user)
{
    ChatSession *session = user.session;
    connect(session, &ChatSession::stateChanged, this, [this, name, session] {
        if (session->state() == ChatSession::State::Connected)
            print(name, session->isModerator() ? u"logged in, as a moderator"_s : u"logged in"_s);
        else if (session->state() == ChatSession::State::Reconnecting)
            print(name, u"not connected: reconnecting"_s);
    });
    connect(session, &ChatSession::errorOccurred, this,
            [this, name](const QString &message) { print(name, u"error: "_s + message); });
    connect(session, &ChatSession::messageReceived, this,
            [this, name, &user](const QString &room, const QVariantMap &message) {
                if (!user.historyLoaded) {
                    ++user.earlierMessages; // only counted: the steps look at live messages
                    return;
                }
                const QString text = message.value(u"text"_s).toString();
                if (message.value(u"kind"_s) == u"system"_s) {
                    print(name, u"%1: * %2"_s.arg(room, text));
                } else {
                    const QString from = message.value(u"from"_s).toString();
                    print(name, u"%1: %2: %3%4"_s.arg(room, from, text,
                                                      message.value(u"mentionsMe"_s).toBool()
                                                              ? u"  (mentions me)"_s
                                                              : QString()));
                }
                user.messages.append(message);
                if (&user == &m_bob && text == UnheardText)
                    fail(u"bob received a message from alice while blocking her"_s);
                advance();
            });
    connect(session, &ChatSession::historyLoaded, this, [this, name, &user](const QString &room) {
        if (user.historyLoaded)
            return;
        print(name,
              u"%1: history loaded, %2 earlier messages"_s.arg(room).arg(user.earlierMessages));
        user.historyLoaded = true;
        advance();
    });
    connect(session, &ChatSession::membersChanged, this,
            [this, name, &user](const QString &room, const QStringList &members) {
                print(name, u"%1 members: %2"_s.arg(room, members.join(u", "_s)));
                user.members = members;
                advance();
            });
    connect(session, &ChatSession::typingChanged, this,
            [this, name, &user](const QString &room, const QStringList &typists) {
                print(name, typists.isEmpty() ? u"%1: nobody is typing"_s.arg(room)
                                              : u"%1: %2 %3 typing"_s.arg(
                                                      room, typists.join(u", "_s),
                                                      typists.size() == 1 ? u"is"_s : u"are"_s));
                user.typists = typists;
                advance();
            });
    connect(session, &ChatSession::blockedUsersChanged, this,
            [this, name, &user](const QStringList &blocked) {
                print(name, u"blocked: %1"_s.arg(blocked.isEmpty() ? u"nobody"_s
                                                                   : blocked.join(u", "_s)));
                user.blocked = blocked;
                advance();
            });
    connect(session, &ChatSession::removedFromRoom, this, [this, name, &user](const QString &room) {
        print(name, u"removed from %1 by a moderator"_s.arg(room));
        user.removed = true;
        advance();
    });
}

void Script::print(const QString &name, const QString &line)
{
    m_out << u'[' << name << u"] "_s << line << Qt::endl;
}

void Script::advance()
{
    // An action may emit an event at once: the loop below checks the step again anyway.
    if (m_finished || m_advancing)
        return;
    const QScopedValueRollback guard(m_advancing, true);
    while (m_current < 0 || m_steps.at(m_current).isComplete()) {
        if (m_current >= 0 && !m_steps.at(m_current).conclusion.isEmpty())
            m_out << u"-- "_s << m_steps.at(m_current).conclusion << Qt::endl;
        if (++m_current == m_steps.size()) {
            m_finished = true;
            m_stepTimer.stop();
            m_out << u"-- all %1 steps done"_s.arg(m_steps.size()) << Qt::endl;
            m_alice.session->close();
            m_bob.session->close();
            QCoreApplication::exit(0);
            return;
        }
        const Step &step = m_steps.at(m_current);
        m_out << u"-- step %1: %2"_s.arg(m_current + 1).arg(step.name) << Qt::endl;
        m_stepTimer.start();
        step.action();
    }
}

void Script::fail(const QString &reason)
{
    if (m_finished)
        return;
    m_finished = true;
    m_stepTimer.stop();
    const QString step = m_current >= 0 ? m_steps.at(m_current).name : QString();
    QTextStream(stderr) << u"FAILED at step %1 (%2): %3"_s.arg(m_current + 1).arg(step, reason)
                        << Qt::endl;
    QCoreApplication::exit(1);
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(u"qtnotif-chat-headless"_s);

    QCommandLineParser parser;
    parser.setApplicationDescription(
            u"Two scripted users of the qtnotif chat demo, printing what each receives."_s);
    parser.addHelpOption();
    const QCommandLineOption urlOption(u"url"_s, u"The chat server's URL (required)."_s, u"url"_s);
    parser.addOption(urlOption);
    parser.process(app);

    const QUrl url(parser.value(urlOption));
    if (!parser.isSet(urlOption) || !url.isValid()
        || (url.scheme() != u"ws"_s && url.scheme() != u"wss"_s)) {
        QTextStream(stderr) << "--url ws://host:port is required" << Qt::endl;
        return 2;
    }

    Script script(url);
    script.start();
    return app.exec();
}
