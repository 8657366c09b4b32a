// A minimal qtnotif server: clients listen to chat rooms; a client sends a message with the
// upstream call "send", and everyone else in the room receives it.
#include <QtNotif/notifier.h>
#include <QtNotif/server.h>

#include <QtCore/QCoreApplication>

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QtNotif::Server server;

    // Who is this client? Here: the user named by "Authorization: Bearer <name>", or anonymous.
    server.setAuthenticator([](const QtNotif::HandshakeRequest &request) {
        const QString name = QString::fromUtf8(request.bearerToken());
        return name.isEmpty() ? QtNotif::AuthResult::anonymous()
                              : QtNotif::AuthResult::accept(QtNotif::Identity::user(name));
    });

    // One notifier per kind of data: here, room name -> chat message.
    auto *rooms
            = new QtNotif::SimpleNotifier<QString, QVariantMap>(&server, QStringLiteral("rooms"));

    server.setHandler(QStringLiteral("send"), [rooms](const QtNotif::Request &request) {
        const QVariantMap message = request.payloadAs<QVariantMap>().value_or(QVariantMap());
        const QVariantMap notification{ { QStringLiteral("from"), request.identity().userId() },
                                        { QStringLiteral("text"),
                                          message.value(QStringLiteral("text")) } };
        // Everyone listening to the room but the sender ("notFor me").
        rooms->notify(message.value(QStringLiteral("room")).toString(), notification, request.me());
        request.reply();
    });

    const quint16 port = argc > 1 ? quint16(QString::fromLocal8Bit(argv[1]).toUInt()) : 8080;
    if (!server.listen(QHostAddress::LocalHost, port)) {
        qCritical("cannot listen: %s", qPrintable(server.errorString()));
        return 1;
    }
    qInfo("listening on %s", qPrintable(server.serverUrl().toString()));
    return app.exec();
}
