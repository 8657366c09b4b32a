#pragma once

#include "qmlnotifier.h"

#include <QtCore/QAbstractListModel>
#include <QtCore/QPointer>
#include <QtQml/QQmlParserStatus>
#include <QtQml/qqmlregistration.h>

namespace QtNotif {

// The notifications of one key of a Notifier, newest last, for a ListView:
//
//     ListView {
//         model: NotificationModel { notifier: messages; key: "lobby"; capacity: 200 }
//         delegate: Text { text: from + ": " + text }   // roles named after the fields
//     }
//
// The model collects; the Notifier listens (the key must be in its keys). Each notification is
// a row; an object's fields are roles (given by `roles`, or else learned from the first object
// received), and the role `notif` holds the whole notification. At most `capacity` rows are
// kept: the oldest go first. Lives in the QML engine's thread.
class NotificationModel : public QAbstractListModel, public QQmlParserStatus
{
    Q_OBJECT
    Q_INTERFACES(QQmlParserStatus)
    QML_ELEMENT
    Q_PROPERTY(
            QtNotif::QmlNotifier *notifier READ notifier WRITE setNotifier NOTIFY notifierChanged)
    Q_PROPERTY(QVariant key READ key WRITE setKey NOTIFY keyChanged)
    Q_PROPERTY(int capacity READ capacity WRITE setCapacity NOTIFY capacityChanged)
    Q_PROPERTY(QStringList roles READ roles WRITE setRoles NOTIFY rolesChanged)
    Q_PROPERTY(int count READ count NOTIFY countChanged)
public:
    explicit NotificationModel(QObject *parent = nullptr);

    QmlNotifier *notifier() const { return m_notifier; }
    void setNotifier(QmlNotifier *notifier);
    // The key whose notifications are collected; changing it clears the model.
    QVariant key() const { return m_key; }
    void setKey(const QVariant &key);
    // The most rows kept (100 by default; at least 1).
    int capacity() const { return m_capacity; }
    void setCapacity(int capacity);
    // The role names taken from each notification's fields. Set it before the model is shown
    // to fix them; left empty, they are learned from the first object received.
    QStringList roles() const { return m_roles; }
    void setRoles(const QStringList &roles);
    int count() const { return int(m_rows.size()); }

    // Adds a notification as if it had arrived (the sender's own message, say, which the
    // server does not send back to it).
    Q_INVOKABLE void append(const QVariant &notif);
    Q_INVOKABLE void clear();
    // The notification of a row (a JavaScript object for JSON objects); undefined out of range.
    Q_INVOKABLE QVariant get(int row) const;

    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    QVariant data(const QModelIndex &index, int role) const override;
    QHash<int, QByteArray> roleNames() const override;

    void classBegin() override { }
    void componentComplete() override { }

Q_SIGNALS:
    void notifierChanged();
    void keyChanged();
    void capacityChanged();
    void rolesChanged();
    void countChanged();

private:
    static constexpr int NotifRole = Qt::UserRole + 1; // then one role per field
    void trim();

    QPointer<QmlNotifier> m_notifier;
    QMetaObject::Connection m_connection;
    QVariant m_key;
    QString m_canonicalKey;
    int m_capacity = 100;
    QStringList m_roles;
    QList<QVariant> m_rows;
};

} // namespace QtNotif
