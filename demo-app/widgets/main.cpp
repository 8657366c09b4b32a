// The chat demo's widgets window:
//   qtnotif-chat-widgets --user alice [--url ws://127.0.0.1:8080] [--room lobby]
#include "chatsession.h"
#include "chatwindow.h"

#include <QtCore/QCommandLineParser>
#include <QtWidgets/QApplication>
#include <QtWidgets/QInputDialog>

using namespace Qt::StringLiterals;

int main(int argc, char *argv[])
{
    QApplication app(argc, argv);
    QApplication::setApplicationName(u"qtnotif-chat-widgets"_s);

    QCommandLineParser parser;
    parser.setApplicationDescription(u"The qtnotif chat demo's Qt Widgets window."_s);
    parser.addHelpOption();
    const QCommandLineOption urlOption(u"url"_s, u"The chat server's URL."_s, u"url"_s,
                                       u"ws://127.0.0.1:8080"_s);
    const QCommandLineOption userOption(
            u"user"_s, u"The name to log in with (asked for when missing)."_s, u"name"_s);
    const QCommandLineOption roomOption(u"room"_s, u"The room joined at start."_s, u"room"_s,
                                        u"lobby"_s);
    const QCommandLineOption sayOption(
            u"say"_s, u"A message to send once the room is shown (repeatable; for screenshots)."_s,
            u"text"_s);
    parser.addOptions({ urlOption, userOption, roomOption, sayOption });
    parser.process(app);

    const QUrl url = QUrl::fromUserInput(parser.value(urlOption));
    if (!url.isValid() || (url.scheme() != u"ws"_s && url.scheme() != u"wss"_s)) {
        qCritical("--url needs a ws:// or wss:// URL, not %s", qPrintable(parser.value(urlOption)));
        return 2;
    }
    QString user = parser.value(userOption);
    if (user.isEmpty()) {
        bool ok = false;
        user = QInputDialog::getText(nullptr, u"qtnotif chat"_s, u"Your name:"_s, QLineEdit::Normal,
                                     QString(), &ok)
                       .trimmed();
        if (!ok || user.isEmpty())
            return 1;
    }

    // The session outlives the window, which does not own it.
    ChatDemo::ChatSession session(url, user);
    ChatDemo::ChatWindow window(&session);
    const QString room = parser.value(roomOption);
    window.joinRoom(room);
    window.show();
    const QStringList said = parser.values(sayOption);
    QObject::connect(
            &session, &ChatDemo::ChatSession::historyLoaded, &session,
            [&session, room, said](const QString &loaded) {
                if (loaded != room)
                    return;
                for (const QString &text : said)
                    session.send(room, text);
            },
            Qt::SingleShotConnection);
    session.open();
    return app.exec();
}
