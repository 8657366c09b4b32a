// Uses the installed QML module for real: `import QtNotif` from the installed import path, a
// Client, a Notifier and a NotificationModel against an in-process server; exits 0 once the
// model holds the notification, 1 after 10 s without it.
#include <QtNotif/notifier.h>
#include <QtNotif/server.h>

#include <QtCore/QCoreApplication>
#include <QtCore/QTimer>
#include <QtQml/QQmlComponent>
#include <QtQml/QQmlEngine>

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QtNotif::Server server;
    auto *news = new QtNotif::SimpleNotifier<QString, QVariantMap>(&server, QStringLiteral("news"));
    if (!server.listen())
        return 1;

    QQmlEngine engine;
    engine.addImportPath(QStringLiteral(QTNOTIF_QML_IMPORT_PATH));
    QQmlComponent component(&engine);
    component.setData(R"(
        import QtQml
        import QtNotif
        QtObject {
            property Client client: Client { id: theClient; active: true }
            property Notifier notifier: Notifier {
                id: news; client: theClient; name: "news"; keys: ["today"]
            }
            property NotificationModel model: NotificationModel { notifier: news; key: "today" }
        }
    )",
                      QUrl());
    std::unique_ptr<QObject> root(component.create());
    if (!root) {
        qCritical("%s", qPrintable(component.errorString()));
        return 1;
    }
    auto *client = root->property("client").value<QObject *>();
    client->setProperty("url", server.serverUrl());
    auto *model = root->property("model").value<QObject *>();

    // Notify once the server has the listen: poll its table rather than sleep.
    QTimer poll;
    bool notified = false;
    QObject::connect(&poll, &QTimer::timeout, &app, [&] {
        if (!notified && news->localListenerCount(QStringLiteral("today")) == 1) {
            news->notify(QStringLiteral("today"),
                         { { QStringLiteral("title"), QStringLiteral("hi") } });
            notified = true;
        }
        if (model->property("count").toInt() == 1) {
            qInfo("the QML model received the notification");
            QCoreApplication::exit(0);
        }
    });
    poll.start(20);
    QTimer::singleShot(10000, &app, [] { QCoreApplication::exit(1); });
    return app.exec();
}
