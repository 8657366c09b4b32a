// Uses the installed package for real: a server and a client in one process; exits 0 once the
// client received a notification, 1 after 10 s without one.
#include <QtNotif/client.h>
#include <QtNotif/clientnotifier.h>
#include <QtNotif/notifier.h>
#include <QtNotif/server.h>

#include <QtCore/QCoreApplication>
#include <QtCore/QTimer>

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QtNotif::Server server;
    auto *news = new QtNotif::SimpleNotifier<QString, QString>(&server, QStringLiteral("news"));
    if (!server.listen())
        return 1;

    QtNotif::Client client;
    client.setUrl(server.serverUrl());
    QtNotif::ClientNotifier *notifier = client.notifier(QStringLiteral("news"));
    QObject::connect(notifier, &QtNotif::ClientNotifier::clientEvent, &app,
                     [](const QVariant &key, const QVariant &notif) {
                         qInfo("received %s on %s", qPrintable(notif.toString()),
                               qPrintable(key.toString()));
                         QCoreApplication::exit(notif.toString() == QStringLiteral("hello") ? 0
                                                                                            : 1);
                     });
    // Notify once the server has the listen: poll its table rather than sleep.
    QTimer poll;
    QObject::connect(&poll, &QTimer::timeout, &app, [&] {
        if (news->localListenerCount(QStringLiteral("world")) == 1) {
            poll.stop();
            news->notify(QStringLiteral("world"), QStringLiteral("hello"));
        }
    });
    poll.start(10);
    notifier->listen(QStringLiteral("world"));
    client.open();
    QTimer::singleShot(10000, &app, [] { QCoreApplication::exit(1); });
    return app.exec();
}
