// ChatDemo::ChatWindow (demo-app/widgets) driven through its widgets, as a user would, against
// a real ChatDemo::ChatServer on loopback. Runs on the offscreen platform.
#include <chatserver.h>
#include <chatwindow.h>

#include <QtGui/QAction>
#include <QtTest/QSignalSpy>
#include <QtTest/QTest>
#include <QtWidgets/QApplication>
#include <QtWidgets/QLabel>
#include <QtWidgets/QLineEdit>
#include <QtWidgets/QListWidget>
#include <QtWidgets/QMenu>
#include <QtWidgets/QPushButton>

#include <memory>

using namespace std::chrono_literals;
using ChatDemo::ChatServer;
using ChatDemo::ChatSession;
using ChatDemo::ChatWindow;

namespace {

// One user's window and the session under it (declared first: it outlives the window).
struct Window
{
    std::unique_ptr<ChatSession> session;
    std::unique_ptr<ChatWindow> window;

    template<typename T>
    T *child(const QString &name) const
    {
        T *widget = window->findChild<T *>(name);
        Q_ASSERT_X(widget, "Window::child", qPrintable(name));
        return widget;
    }
    QListWidget *list(const QString &name) const { return child<QListWidget>(name); }
    QLineEdit *input() const { return child<QLineEdit>("input"); }
    QString label(const QString &name) const { return child<QLabel>(name)->text(); }

    // The texts of a list widget's items, in order.
    QStringList texts(const QString &name) const
    {
        QStringList result;
        const QListWidget *widget = list(name);
        for (int i = 0; i < widget->count(); ++i)
            result.append(widget->item(i)->text());
        return result;
    }

    QListWidgetItem *item(const QString &listName, const QString &text) const
    {
        const QList<QListWidgetItem *> items = list(listName)->findItems(text, Qt::MatchExactly);
        return items.isEmpty() ? nullptr : items.first();
    }

    // Types text in the input line and presses Enter.
    void say(const QString &text) const
    {
        QTest::keyClicks(input(), text);
        QTest::keyClick(input(), Qt::Key_Return);
    }
};

} // namespace

class tst_ChatWindow : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void showsStateRoomsAndMembers();
    void messageAppearsInTheOtherWindowAndOnceInTheSender();
    void typingIndicator();
    void mentionsAreBoldSystemMessagesItalic();
    void blockFromTheMemberMenu();
    void removedFromRoomShowsNotice();
    void doubleClickJoinsAndButtonLeaves();

private:
    // A window of name shown on lobby, waited for until it is in the lobby's member list.
    std::unique_ptr<Window> openWindow(const QString &name);

    std::unique_ptr<ChatServer> server;
};

void tst_ChatWindow::init()
{
    server = std::make_unique<ChatServer>();
    QVERIFY2(server->listen(), qPrintable(server->errorString()));
}

void tst_ChatWindow::cleanup()
{
    server.reset();
}

std::unique_ptr<Window> tst_ChatWindow::openWindow(const QString &name)
{
    auto window = std::make_unique<Window>();
    window->session = std::make_unique<ChatSession>(server->url(), name);
    window->session->client()->setReconnectDelays(20ms, 200ms);
    window->window = std::make_unique<ChatWindow>(window->session.get());
    window->window->joinRoom("lobby");
    window->window->show();
    window->session->open();
    const bool ready = QTest::qWaitFor(
            [&] {
                return window->item("members", name) && window->input()->isEnabled()
                       && window->item("rooms", "lobby");
            },
            5000);
    return ready ? std::move(window) : nullptr;
}

void tst_ChatWindow::showsStateRoomsAndMembers()
{
    const auto alice = openWindow("alice");
    QVERIFY(alice);
    QCOMPARE(alice->label("state"), QString("Connected as alice (moderator)"));
    QCOMPARE(alice->texts("rooms"), (QStringList{ "lobby", "qt", "random" }));
    QCOMPARE(alice->list("rooms")->currentItem()->text(), QString("lobby"));
    QVERIFY(alice->item("rooms", "lobby")->font().bold()); // joined
    QVERIFY(!alice->item("rooms", "qt")->font().bold());
    QCOMPARE(alice->child<QPushButton>("joinButton")->text(), QString("Leave"));
    QCOMPARE(alice->window->currentRoom(), QString("lobby"));

    const auto bob = openWindow("bob");
    QVERIFY(bob);
    QCOMPARE(bob->label("state"), QString("Connected as bob"));
    QTRY_COMPARE(alice->texts("members"), (QStringList{ "alice", "bob" }));
    QCOMPARE(bob->texts("members"), (QStringList{ "alice", "bob" }));

    bob->session->close();
    QCOMPARE(bob->label("state"), QString("Disconnected"));
    QVERIFY(!bob->input()->isEnabled());
    QTRY_COMPARE(alice->texts("members"), QStringList{ "alice" });
}

void tst_ChatWindow::messageAppearsInTheOtherWindowAndOnceInTheSender()
{
    const auto alice = openWindow("alice");
    const auto bob = openWindow("bob");
    QVERIFY(alice);
    QVERIFY(bob);

    alice->say("hello bob");
    QTRY_COMPARE(bob->texts("messages"), QStringList{ "alice: hello bob" });
    QTRY_COMPARE(alice->texts("messages"), QStringList{ "alice: hello bob" });
    QVERIFY(alice->input()->text().isEmpty());

    // Bob's answer, sent after, proves no second copy of alice's message is coming to her.
    bob->say("hi alice");
    QTRY_COMPARE(alice->texts("messages"), (QStringList{ "alice: hello bob", "bob: hi alice" }));
    QTRY_COMPARE(bob->texts("messages"), (QStringList{ "alice: hello bob", "bob: hi alice" }));
    // Each item holds its message.
    const QVariantMap message = alice->list("messages")->item(1)->data(Qt::UserRole).toMap();
    QCOMPARE(message.value("from").toString(), QString("bob"));
    QCOMPARE(message.value("room").toString(), QString("lobby"));
}

void tst_ChatWindow::typingIndicator()
{
    const auto alice = openWindow("alice");
    const auto bob = openWindow("bob");
    QVERIFY(alice);
    QVERIFY(bob);
    QCOMPARE(alice->label("typing"), QString());

    QTest::keyClicks(bob->input(), "hel");
    QTRY_COMPARE(alice->label("typing"), QString("bob is typing..."));
    QCOMPARE(bob->label("typing"), QString()); // not to the typist
    // Erasing everything is stopping.
    for (int i = 0; i < 3; ++i)
        QTest::keyClick(bob->input(), Qt::Key_Backspace);
    QTRY_COMPARE(alice->label("typing"), QString());

    // Sending is stopping too.
    QTest::keyClicks(bob->input(), "hello");
    QTRY_COMPARE(alice->label("typing"), QString("bob is typing..."));
    QTest::keyClick(bob->input(), Qt::Key_Return);
    QTRY_COMPARE(alice->label("typing"), QString());
    QCOMPARE(alice->texts("messages"), QStringList{ "bob: hello" });
}

void tst_ChatWindow::mentionsAreBoldSystemMessagesItalic()
{
    const auto alice = openWindow("alice");
    const auto bob = openWindow("bob");
    const auto carol = openWindow("carol");
    QVERIFY(alice);
    QVERIFY(bob);
    QVERIFY(carol);

    alice->say("hello @bob");
    QTRY_COMPARE(bob->texts("messages"), QStringList{ "alice: hello @bob" });
    QVERIFY(bob->list("messages")->item(0)->font().bold());
    QTRY_COMPARE(carol->texts("messages"), QStringList{ "alice: hello @bob" });
    QVERIFY(!carol->list("messages")->item(0)->font().bold());

    alice->say("/kick carol");
    QTRY_COMPARE(bob->texts("messages"),
                 (QStringList{ "alice: hello @bob", "carol was removed by alice" }));
    QVERIFY(bob->list("messages")->item(1)->font().italic());
    QVERIFY(!bob->list("messages")->item(0)->font().italic());
}

void tst_ChatWindow::blockFromTheMemberMenu()
{
    const auto alice = openWindow("alice");
    const auto bob = openWindow("bob");
    QVERIFY(alice);
    QVERIFY(bob);
    QTRY_VERIFY(bob->item("members", "alice"));

    // The menu runs its own event loop: act on it from inside.
    QStringList actions;
    QTimer::singleShot(0, this, [&] {
        auto *menu = qobject_cast<QMenu *>(QApplication::activePopupWidget());
        QVERIFY(menu);
        for (QAction *action : menu->actions())
            actions.append(action->text());
        menu->actions().first()->trigger();
        menu->close();
    });
    QListWidget *members = bob->list("members");
    const QPoint position = members->visualItemRect(bob->item("members", "alice")).center();
    Q_EMIT members->customContextMenuRequested(position);
    // Bob is no moderator: no "Remove".
    QCOMPARE(actions, QStringList{ "Block alice" });
    QTRY_VERIFY(bob->session->isBlocked("alice"));
    QTRY_VERIFY(bob->item("members", "alice")->font().strikeOut());

    alice->say("can you hear me?");
    QTRY_COMPARE(alice->texts("messages"), QStringList{ "alice: can you hear me?" });
    // Unblocking by command: its reply comes after anything alice's message brought.
    bob->say("/unblock alice");
    QTRY_VERIFY(!bob->session->isBlocked("alice"));
    QCOMPARE(bob->texts("messages"), QStringList());
    QVERIFY(!bob->item("members", "alice")->font().strikeOut());
}

void tst_ChatWindow::removedFromRoomShowsNotice()
{
    const auto alice = openWindow("alice");
    const auto bob = openWindow("bob");
    QVERIFY(alice);
    QVERIFY(bob);
    QTRY_VERIFY(alice->item("members", "bob"));

    // The moderator's menu has "Remove" too.
    QTimer::singleShot(0, this, [&] {
        auto *menu = qobject_cast<QMenu *>(QApplication::activePopupWidget());
        QVERIFY(menu);
        QCOMPARE(menu->actions().size(), 2);
        QCOMPARE(menu->actions().at(1)->text(), QString("Remove bob from lobby"));
        menu->actions().at(1)->trigger();
        menu->close();
    });
    QListWidget *members = alice->list("members");
    Q_EMIT members->customContextMenuRequested(
            members->visualItemRect(alice->item("members", "bob")).center());

    const QString notice = "You were removed from lobby by a moderator.";
    QTRY_COMPARE(bob->texts("messages"), QStringList{ notice });
    QVERIFY(bob->list("messages")->item(0)->font().italic());
    QVERIFY(!bob->input()->isEnabled());
    QVERIFY(!bob->item("rooms", "lobby")->font().bold());
    QCOMPARE(bob->child<QPushButton>("joinButton")->text(), QString("Join"));
    QTRY_COMPARE(alice->texts("members"), QStringList{ "alice" });
    QTRY_COMPARE(alice->texts("messages"), QStringList{ "bob was removed by alice" });

    // Joining again starts afresh, from the room's history.
    QTest::mouseClick(bob->child<QPushButton>("joinButton"), Qt::LeftButton);
    QTRY_COMPARE(bob->texts("messages"), QStringList{ "bob was removed by alice" });
    QTRY_VERIFY(bob->input()->isEnabled());
    QTRY_COMPARE(alice->texts("members"), (QStringList{ "alice", "bob" }));
}

void tst_ChatWindow::doubleClickJoinsAndButtonLeaves()
{
    const auto bob = openWindow("bob");
    QVERIFY(bob);
    QListWidget *rooms = bob->list("rooms");
    QListWidgetItem *qt = bob->item("rooms", "qt");
    // For widgets QTest sends the double-click event alone: click first, as a mouse does.
    const QPoint position = rooms->visualItemRect(qt).center();
    QTest::mouseClick(rooms->viewport(), Qt::LeftButton, {}, position);
    QTest::mouseDClick(rooms->viewport(), Qt::LeftButton, {}, position);
    QCOMPARE(bob->window->currentRoom(), QString("qt"));
    QVERIFY(bob->session->isJoined("qt"));
    QTRY_COMPARE(bob->texts("members"), QStringList{ "bob" });
    QVERIFY(bob->session->isJoined("qt"));
    QVERIFY(bob->item("rooms", "qt")->font().bold());
    bob->say("anyone here?");
    QTRY_COMPARE(bob->texts("messages"), QStringList{ "bob: anyone here?" });

    // Back to lobby by a click: its messages, not qt's.
    QTest::mouseClick(rooms->viewport(), Qt::LeftButton, {},
                      rooms->visualItemRect(bob->item("rooms", "lobby")).center());
    QCOMPARE(bob->window->currentRoom(), QString("lobby"));
    QCOMPARE(bob->texts("messages"), QStringList());

    // Leave lobby with the button.
    QTest::mouseClick(bob->child<QPushButton>("joinButton"), Qt::LeftButton);
    QVERIFY(!bob->session->isJoined("lobby"));
    QCOMPARE(bob->child<QPushButton>("joinButton")->text(), QString("Join"));
    QVERIFY(!bob->input()->isEnabled());
    QTRY_COMPARE(server->localMembers("lobby"), QStringList());
    QCOMPARE(server->localMembers("qt"), QStringList{ "bob" });
}

QTEST_MAIN(tst_ChatWindow)
#include "tst_chatwindow.moc"
