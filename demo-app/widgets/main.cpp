// The chat demo's widgets window:
//   qtnotif-chat-widgets --user alice [--url ws://127.0.0.1:8080] [--room lobby]
#include "chatsession.h"
#include "chatwindow.h"

#include "windowoptions.h"

#include <QtWidgets/QApplication>
#include <QtWidgets/QInputDialog>

using namespace Qt::StringLiterals;

int main(int argc, char *argv[])
{
    QApplication app(argc, argv);
    QApplication::setApplicationName(u"qtnotif-chat-widgets"_s);

    const ChatDemo::WindowOptions options
            = ChatDemo::parseWindowOptions(app, u"The qtnotif chat demo's Qt Widgets window."_s,
                                           u"The name to log in with (asked for when missing)."_s);

    const QUrl url = QUrl::fromUserInput(options.url);
    if (!url.isValid() || (url.scheme() != u"ws"_s && url.scheme() != u"wss"_s)) {
        qCritical("--url needs a ws:// or wss:// URL, not %s", qPrintable(options.url));
        return 2;
    }
    QString user = options.user;
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
    const QString room = options.room;
    window.joinRoom(room);
    window.show();
    const QStringList said = options.say;
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
