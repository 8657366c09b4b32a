#pragma once

#include <QtNotif/clientnotifier.h>

#include <QtCore/QJsonValue>
#include <QtCore/QMap>

namespace QtNotif {

class ClientNotifierPrivate
{
public:
    // A key the application wants to listen to.
    struct WantedKey
    {
        QJsonValue key;
        // Id of the last listen frame sent for it: only the error to that frame removes the
        // key, not one to an older frame (listen, unlisten, listen again).
        qint64 listenId = 0;
    };

    ClientNotifierPrivate(ClientNotifier *notifier, Client *client, const QString &name)
        : q(notifier), client(client), name(name)
    {
    }
    static ClientNotifierPrivate *get(ClientNotifier *notifier) { return notifier->d.get(); }

    // What the server said about this notifier; each emits the matching signals.
    void deliver(const QJsonValue &key, const QJsonValue &data, quint64 seq);
    void listenFailed(qint64 id, const QString &key, const QString &code, const QString &message);
    void listenedByServer(const QJsonValue &key);
    void unlistenedByServer(const QJsonValue &key, const QString &reason);

    ClientNotifier *q;
    Client *client;
    QString name;
    QMap<QString, WantedKey> keys; // by canonical key
};

} // namespace QtNotif
