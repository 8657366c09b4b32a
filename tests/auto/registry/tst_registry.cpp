// The rules of listening, table-driven and without sockets: each row is a script of registry
// operations with the result each must give.
#include "registry_p.h"

#include <QtTest/QTest>

using namespace QtNotif;

class tst_Registry : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void rules_data();
    void rules();
};

namespace {

QString idList(const QList<ConnectionId> &ids)
{
    QStringList parts;
    for (ConnectionId id : ids)
        parts.append(QString::number(id));
    return parts.join(QLatin1Char(','));
}

QString listenResult(Registry::ListenResult result)
{
    switch (result) {
    case Registry::ListenResult::Added:
        return "added";
    case Registry::ListenResult::AlreadyListening:
        return "already";
    case Registry::ListenResult::UnknownConnection:
        return "unknown";
    case Registry::ListenResult::LimitReached:
        return "limit";
    }
    return {};
}

NotFor notForOf(const QString &text)
{
    if (text.startsWith("conn:"))
        return NotFor::connection(text.mid(5).toULongLong());
    if (text.startsWith("user:"))
        return NotFor::user(text.mid(5));
    return NotFor::nobody();
}

QString user(const QString &word)
{
    return word == "-" ? QString() : word;
}

// Runs one step, "<operation> <arguments> [= <expected>]", and returns what it gave (empty
// for steps without a result).
QString run(Registry &registry, const QStringList &words)
{
    const QString op = words.at(0);
    auto conn = [&](int i) { return ConnectionId(words.at(i).toULongLong()); };
    if (op == "add") {
        registry.addConnection(conn(1), user(words.at(2)));
        return {};
    }
    if (op == "remove")
        return QString::number(registry.removeConnection(conn(1)).size());
    if (op == "reset")
        return QString::number(registry.resetConnection(conn(1), user(words.at(2))).size());
    if (op == "listen") {
        const int max = words.size() > 4 && words.at(4).startsWith("max=")
                                ? words.at(4).mid(4).toInt()
                                : 0;
        return listenResult(
                registry.listen(conn(1), words.at(2), words.at(3), QJsonValue(words.at(3)), max));
    }
    if (op == "unlisten")
        return registry.unlisten(conn(1), words.at(2), words.at(3)) ? "true" : "false";
    if (op == "unlistenUser")
        return idList(registry.unlistenUser(user(words.at(1)), words.at(2), words.at(3)));
    if (op == "recipients") {
        const NotFor notFor = words.size() > 3 ? notForOf(words.at(3)) : NotFor::nobody();
        return idList(registry.recipients(words.at(1), words.at(2), notFor));
    }
    if (op == "count")
        return QString::number(registry.listenerCount(words.at(1), words.at(2)));
    if (op == "keys")
        return QString::number(registry.keyCount());
    if (op == "listens")
        return QString::number(registry.listenCount());
    if (op == "seq")
        return QString::number(registry.nextSeq(words.at(1), words.at(2)));
    if (op == "users")
        return idList(registry.connectionsOfUser(words.at(1)));
    if (op == "reserve") {
        registry.reserve(words.at(1), words.at(2).toInt(), words.at(3).toInt());
        return {};
    }
    if (op == "removeNotifier")
        return QString::number(registry.removeNotifier(words.at(1)).size());
    return "unknown step " + op;
}

} // namespace

void tst_Registry::rules_data()
{
    QTest::addColumn<QStringList>("steps");

    QTest::addRow("listening twice is harmless") << QStringList{
        "add 1 alice", "listen 1 chat a = added", "listen 1 chat a = already", "count chat a = 1",
        "listens = 1", "recipients chat a = 1",
    };
    QTest::addRow("unlisten says whether it was listening") << QStringList{
        "add 1 -",
        "unlisten 1 chat a = false",
        "listen 1 chat a = added",
        "unlisten 1 chat a = true",
        "unlisten 1 chat a = false",
        "keys = 0",
    };
    QTest::addRow("an unknown connection cannot listen") << QStringList{
        "listen 9 chat a = unknown",
        "keys = 0",
        "unlisten 9 chat a = false",
    };
    QTest::addRow("notFor nobody reaches every listener in listen order") << QStringList{
        "add 3 -",
        "add 1 -",
        "add 2 -",
        "listen 2 chat a = added",
        "listen 3 chat a = added",
        "listen 1 chat a = added",
        "recipients chat a nobody = 2,3,1",
    };
    QTest::addRow("notFor me leaves out the calling connection only") << QStringList{
        "add 1 alice",
        "add 2 alice",
        "add 3 -",
        "listen 1 chat a = added",
        "listen 2 chat a = added",
        "listen 3 chat a = added",
        "recipients chat a conn:2 = 1,3",
    };
    QTest::addRow("notFor user leaves out every connection of the user") << QStringList{
        "add 1 alice",
        "add 2 alice",
        "add 3 bob",
        "add 4 -",
        "listen 1 chat a = added",
        "listen 2 chat a = added",
        "listen 3 chat a = added",
        "listen 4 chat a = added",
        "recipients chat a user:alice = 3,4",
        "recipients chat a user:carol = 1,2,3,4",
    };
    QTest::addRow("anonymous is never a user") << QStringList{
        "add 1 -",
        "add 2 -",
        "listen 1 chat a = added",
        "listen 2 chat a = added",
        "recipients chat a user: = 1,2",
        "unlistenUser - chat a = ",
        "count chat a = 2",
    };
    QTest::addRow("unlistenUser reaches both connections of one user") << QStringList{
        "add 1 alice",
        "add 2 alice",
        "add 3 bob",
        "listen 1 chat a = added",
        "listen 2 chat a = added",
        "listen 3 chat a = added",
        "listen 1 chat b = added",
        "unlistenUser alice chat a = 1,2",
        "recipients chat a = 3",
        "count chat b = 1",
        "unlistenUser alice chat a = ",
    };
    QTest::addRow("notifiers are separate tables") << QStringList{
        "add 1 -",         "listen 1 chat a = added",  "listen 1 doc a = added", "count chat a = 1",
        "count doc a = 1", "unlisten 1 chat a = true", "count doc a = 1",        "keys = 1",
    };
    QTest::addRow("a key goes with its last listener") << QStringList{
        "add 1 -",
        "add 2 -",
        "listen 1 chat a = added",
        "listen 2 chat a = added",
        "unlisten 1 chat a = true",
        "keys = 1",
        "unlisten 2 chat a = true",
        "keys = 0",
        "listens = 0",
    };
    QTest::addRow("removing a connection removes every listen") << QStringList{
        "add 1 alice",
        "add 2 bob",
        "listen 1 chat a = added",
        "listen 1 chat b = added",
        "listen 1 doc x = added",
        "listen 2 chat a = added",
        "remove 1 = 3",
        "keys = 1",
        "listens = 1",
        "users alice = ",
        "recipients chat a = 2",
        "remove 2 = 1",
        "keys = 0",
        "listens = 0",
    };
    QTest::addRow("an identity change drops the listens and moves the user") << QStringList{
        "add 1 alice",
        "listen 1 chat a = added",
        "reset 1 bob = 1",
        "keys = 0",
        "users alice = ",
        "users bob = 1",
        "listen 1 chat a = added",
        "recipients chat a user:bob = ",
    };
    QTest::addRow("listens per connection are bounded") << QStringList{
        "add 1 -",
        "listen 1 chat a max=2 = added",
        "listen 1 chat b max=2 = added",
        "listen 1 chat c max=2 = limit",
        "listen 1 chat a max=2 = already",
        "unlisten 1 chat a = true",
        "listen 1 chat c max=2 = added",
    };
    QTest::addRow("sequence numbers count per key and restart with a new first listener")
            << QStringList{
                   "add 1 -",
                   "seq chat a = 0",
                   "listen 1 chat a = added",
                   "seq chat a = 1",
                   "seq chat a = 2",
                   "seq chat b = 0",
                   "unlisten 1 chat a = true",
                   "listen 1 chat a = added",
                   "seq chat a = 1",
               };
    QTest::addRow("capacity hints change no rule") << QStringList{
        "reserve chat 100 10",
        "keys = 0",
        "add 1 -",
        "listen 1 chat a = added",
        "count chat a = 1",
        "unlisten 1 chat a = true",
        "keys = 0",
        "removeNotifier chat = 0",
    };
    QTest::addRow("a listen over the limit leaves no key behind") << QStringList{
        "add 1 -",
        "listen 1 chat a max=1 = added",
        "listen 1 chat b max=1 = limit",
        "keys = 1",
        "count chat b = 0",
        "remove 1 = 1",
        "keys = 0",
    };
    {
        // A connection's listens point at the table's entries, which must stay where they are
        // while many other keys come and go around them (the table grows and shrinks).
        QStringList steps{ "add 1 -", "add 2 -", "listen 1 chat a = added" };
        for (int i = 0; i < 500; ++i)
            steps << QStringLiteral("listen 2 chat k%1 = added").arg(i);
        steps << "count chat a = 1"
              << "keys = 501";
        for (int i = 0; i < 500; i += 2)
            steps << QStringLiteral("unlisten 2 chat k%1 = true").arg(i);
        steps << "unlisten 1 chat a = true"
              << "count chat a = 0"
              << "keys = 250"
              << "listen 1 chat a = added"
              << "remove 2 = 250"
              << "keys = 1"
              << "remove 1 = 1"
              << "keys = 0";
        QTest::addRow("listens outlive the growth of their key table") << steps;
    }
    QTest::addRow("removing a notifier removes its listens only") << QStringList{
        "add 1 -",
        "listen 1 chat a = added",
        "listen 1 chat b = added",
        "listen 1 doc a = added",
        "removeNotifier chat = 2",
        "keys = 1",
        "listens = 1",
        "listen 1 chat a = added",
    };
}

void tst_Registry::rules()
{
    QFETCH(QStringList, steps);
    Registry registry;
    for (const QString &step : std::as_const(steps)) {
        const qsizetype equals = step.indexOf(" = ");
        const QString command = equals < 0 ? step : step.left(equals);
        const QString got = run(registry, command.split(QLatin1Char(' ')));
        if (equals >= 0) {
            const QString expected = step.mid(equals + 3).trimmed();
            if (got != expected)
                QFAIL(qPrintable(QString("step \"%1\" gave \"%2\"").arg(step, got)));
        }
    }
}

QTEST_GUILESS_MAIN(tst_Registry)
#include "tst_registry.moc"
