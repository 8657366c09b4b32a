// The chat demo end to end, offscreen: a ChatServer, alice in the widgets window and bob in the
// QML window, each driven through what its user would touch.
#include "chatserver.h"
#include "chatsession.h"
#include "chatwindow.h"

#include <QtCore/QAbstractItemModel>
#include <QtQml/QQmlApplicationEngine>
#include <QtQml/QQmlExtensionPlugin>
#include <QtTest/QTest>
#include <QtWidgets/QLabel>
#include <QtWidgets/QLineEdit>
#include <QtWidgets/QListWidget>

#include <memory>

Q_IMPORT_QML_PLUGIN(ChatDemoPlugin)

using namespace std::chrono_literals;
using ChatDemo::ChatServer;
using ChatDemo::ChatSession;
using ChatDemo::ChatWindow;

class tst_ChatDemo : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void messageFromWidgetsReachesQmlAndNotTwiceTheSender();
    void typingIndicatorReachesTheOtherWindow();
    void blockedSenderIsNotReceived();
    void mentionIsMarkedForTheMentionedUserAlone();
    void moderatorRemovalIsShownInTheRemovedWindow();
    void messageFromQmlReachesWidgets();

private:
    // alice's widgets window: its messages list as "from: text" lines.
    QStringList aliceLines() const;
    void aliceSays(const QString &text);
    // bob's QML window.
    QObject *bobChild(const char *objectName) const;
    QAbstractItemModel *bobModel() const
    {
        return qobject_cast<QAbstractItemModel *>(bobChild("messagesModel"));
    }
    // Row field of bob's messages model.
    QVariant bobMessage(int row, const char *field) const;
    int bobRowWithText(const QString &text) const;

    std::unique_ptr<ChatServer> server;
    std::unique_ptr<ChatSession> aliceSession;
    std::unique_ptr<ChatWindow> alice;
    std::unique_ptr<QQmlApplicationEngine> bobEngine;
    QObject *bob = nullptr;
};

void tst_ChatDemo::init()
{
    server = std::make_unique<ChatServer>(); // alice is a moderator by default
    QVERIFY2(server->listen(), qPrintable(server->errorString()));

    aliceSession = std::make_unique<ChatSession>(server->url(), QStringLiteral("alice"));
    alice = std::make_unique<ChatWindow>(aliceSession.get());
    alice->joinRoom(QStringLiteral("lobby"));
    alice->show();
    aliceSession->open();

    bobEngine = std::make_unique<QQmlApplicationEngine>();
    bobEngine->addImportPath(QStringLiteral(QTNOTIF_QML_IMPORT_DIR));
    bobEngine->setInitialProperties({ { QStringLiteral("serverUrl"), server->url() },
                                      { QStringLiteral("user"), QStringLiteral("bob") } });
    bobEngine->load(QUrl(QStringLiteral("qrc:/ChatDemo/ChatWindow.qml")));
    QCOMPARE(bobEngine->rootObjects().size(), 1);
    bob = bobEngine->rootObjects().first();

    // Both in the lobby, and each sees the other there.
    QTRY_VERIFY(!alice->findChild<QListWidget *>("members")
                         ->findItems("bob", Qt::MatchExactly)
                         .isEmpty());
    QTRY_VERIFY(bob->property("members").toStringList().contains("alice"));
    QTRY_VERIFY(alice->findChild<QLineEdit *>("input")->isEnabled());
}

void tst_ChatDemo::cleanup()
{
    bobEngine.reset();
    bob = nullptr;
    alice.reset();
    aliceSession.reset();
    server.reset();
}

QStringList tst_ChatDemo::aliceLines() const
{
    QStringList lines;
    const auto *list = alice->findChild<QListWidget *>("messages");
    for (int i = 0; i < list->count(); ++i)
        lines.append(list->item(i)->text());
    return lines;
}

void tst_ChatDemo::aliceSays(const QString &text)
{
    QLineEdit *input = alice->findChild<QLineEdit *>("input");
    QTest::keyClicks(input, text);
    QTest::keyClick(input, Qt::Key_Return);
}

QObject *tst_ChatDemo::bobChild(const char *objectName) const
{
    QObject *child = bob->findChild<QObject *>(QLatin1String(objectName));
    Q_ASSERT_X(child, "bobChild", objectName);
    return child;
}

QVariant tst_ChatDemo::bobMessage(int row, const char *field) const
{
    QAbstractItemModel *model = bobModel();
    const int role = model->roleNames().key(field, -1);
    return model->data(model->index(row, 0), role);
}

int tst_ChatDemo::bobRowWithText(const QString &text) const
{
    for (int row = 0; row < bobModel()->rowCount(); ++row) {
        if (bobMessage(row, "text").toString() == text)
            return row;
    }
    return -1;
}

void tst_ChatDemo::messageFromWidgetsReachesQmlAndNotTwiceTheSender()
{
    aliceSays("hello from the widgets window");
    QTRY_VERIFY(bobRowWithText("hello from the widgets window") >= 0);
    const int row = bobRowWithText("hello from the widgets window");
    QCOMPARE(bobMessage(row, "from").toString(), QString("alice"));
    QCOMPARE(bobMessage(row, "mentionsMe").toBool(), false);
    // The sender shows its own message once: the server does not send it back (notFor me).
    QTRY_COMPARE(aliceLines().count("alice: hello from the widgets window"), 1);
    aliceSays("marker");
    QTRY_VERIFY(bobRowWithText("marker") >= 0);
    QCOMPARE(aliceLines().count("alice: hello from the widgets window"), 1);
}

void tst_ChatDemo::typingIndicatorReachesTheOtherWindow()
{
    QTest::keyClicks(alice->findChild<QLineEdit *>("input"), "typing something");
    QTRY_COMPARE(bobChild("typing")->property("text").toString(), QString("alice is typing..."));
    QTest::keyClick(alice->findChild<QLineEdit *>("input"), Qt::Key_Return);
    QTRY_COMPARE(bobChild("typing")->property("text").toString(), QString());
    // The typist's own window never shows itself typing (notFor me).
    QCOMPARE(alice->findChild<QLabel *>("typing")->text(), QString());
}

void tst_ChatDemo::blockedSenderIsNotReceived()
{
    QVERIFY(QMetaObject::invokeMethod(bob, "block", Q_ARG(QVariant, "alice"),
                                      Q_ARG(QVariant, true)));
    QTRY_COMPARE(bobChild("notice")->property("text").toString(), QString("Blocked alice"));
    aliceSays("can you hear me?");
    QTRY_VERIFY(aliceLines().contains("alice: can you hear me?"));
    QVERIFY(QMetaObject::invokeMethod(bob, "block", Q_ARG(QVariant, "alice"),
                                      Q_ARG(QVariant, false)));
    QTRY_COMPARE(bobChild("notice")->property("text").toString(), QString("Unblocked alice"));
    aliceSays("and now?");
    QTRY_VERIFY(bobRowWithText("and now?") >= 0);
    // One socket keeps order: had the blocked message been sent, it would be here by now.
    QCOMPARE(bobRowWithText("can you hear me?"), -1);
}

void tst_ChatDemo::mentionIsMarkedForTheMentionedUserAlone()
{
    aliceSays("hello @bob");
    QTRY_VERIFY(bobRowWithText("hello @bob") >= 0);
    QCOMPARE(bobMessage(bobRowWithText("hello @bob"), "mentionsMe").toBool(), true);
    aliceSays("hello @carol");
    QTRY_VERIFY(bobRowWithText("hello @carol") >= 0);
    QCOMPARE(bobMessage(bobRowWithText("hello @carol"), "mentionsMe").toBool(), false);
}

void tst_ChatDemo::moderatorRemovalIsShownInTheRemovedWindow()
{
    aliceSays("/kick bob");
    QTRY_COMPARE(bobChild("notice")->property("text").toString(),
                 QString("You were removed from #lobby by a moderator."));
    QTRY_VERIFY(!bob->property("joinedRooms").toStringList().contains("lobby"));
    QTRY_VERIFY(aliceLines().contains("bob was removed by alice"));
    QTRY_VERIFY(alice->findChild<QListWidget *>("members")
                        ->findItems("bob", Qt::MatchExactly)
                        .isEmpty());
}

void tst_ChatDemo::messageFromQmlReachesWidgets()
{
    QVERIFY(QMetaObject::invokeMethod(bob, "send", Q_ARG(QVariant, "hi alice, from QML")));
    QTRY_VERIFY(aliceLines().contains("bob: hi alice, from QML"));
    QTRY_VERIFY(bobRowWithText("hi alice, from QML") >= 0); // bob's own, added locally
    QTRY_COMPARE(bobModel()->rowCount(), 1);
}

QTEST_MAIN(tst_ChatDemo)
#include "tst_chatdemo.moc"
