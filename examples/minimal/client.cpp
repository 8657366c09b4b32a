// A minimal qtnotif client: listens to the room "lobby", says hello, and prints what others say.
//   minimal_client <name> [ws://127.0.0.1:8080]
#include <QtNotif/client.h>
#include <QtNotif/clientnotifier.h>

#include <QtCore/QCoreApplication>

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const QString name = argc > 1 ? QString::fromLocal8Bit(argv[1]) : QStringLiteral("guest");

    QtNotif::Client client;
    client.setUrl(QUrl(argc > 2 ? QString::fromLocal8Bit(argv[2])
                                : QStringLiteral("ws://127.0.0.1:8080")));
    client.setToken(name); // the server's authenticator makes it the identity

    QtNotif::ClientNotifier *rooms = client.notifier(QStringLiteral("rooms"));
    QObject::connect(rooms, &QtNotif::ClientNotifier::clientEvent,
                     [](const QVariant &room, const QVariant &notification) {
                         const QVariantMap message = notification.toMap();
                         qInfo("[%s] %s: %s", qPrintable(room.toString()),
                               qPrintable(message.value(QStringLiteral("from")).toString()),
                               qPrintable(message.value(QStringLiteral("text")).toString()));
                     });
    // Listen before or after open(): the client listens again by itself after a reconnect.
    rooms->listen(QStringLiteral("lobby"));

    QObject::connect(&client, &QtNotif::Client::connected, &client, [&client, name] {
        client.call(
                QStringLiteral("send"),
                QJsonObject{ { QStringLiteral("room"), QStringLiteral("lobby") },
                             { QStringLiteral("text"), QStringLiteral("hello from ") + name } });
    });
    client.open();
    return app.exec();
}
