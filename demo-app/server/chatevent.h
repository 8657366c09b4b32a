// One event of a chat room, as the server keeps and notifies it.
#pragma once

#include <QtCore/QObject>
#include <QtCore/QString>
#include <QtCore/QStringList>

namespace ChatDemo {

// The ServerNotif of the "messages" notifier: what happened in a room, the same for everyone.
// The notifier's prepare turns it into what one recipient receives (a QVariantMap with
// "mentionsMe", or nothing when the recipient blocked the sender). A Q_GADGET, so the SDK's
// codec encodes it as a JSON object of its properties without further code.
struct ChatEvent
{
    Q_GADGET
    Q_PROPERTY(qint64 id MEMBER id)
    Q_PROPERTY(QString room MEMBER room)
    Q_PROPERTY(QString from MEMBER from)
    Q_PROPERTY(QString text MEMBER text)
    Q_PROPERTY(QString time MEMBER time)
    Q_PROPERTY(QString kind MEMBER kind)
    Q_PROPERTY(QStringList mentions MEMBER mentions)
public:
    qint64 id = 0; // unique on this server, increasing
    QString room;
    QString from; // the sender; empty for system messages
    QString text;
    QString time;         // ISO 8601, UTC, with milliseconds
    QString kind;         // "message" or "system"
    QStringList mentions; // the names of the @name tokens of the text

    bool isSystem() const { return kind == QLatin1String("system"); }
};

} // namespace ChatDemo
