#include "notificationmodel.h"

#include "qmlnotifier.h"
#include "qmlvalues_p.h"

namespace QtNotif {

NotificationModel::NotificationModel(QObject *parent) : QAbstractListModel(parent) { }

void NotificationModel::setNotifier(QmlNotifier *notifier)
{
    if (m_notifier == notifier)
        return;
    disconnect(m_connection);
    m_notifier = notifier;
    if (notifier) {
        m_connection = connect(notifier, &QmlNotifier::clientEvent, this,
                               [this](const QVariant &key, const QVariant &notif) {
                                   if (!m_canonicalKey.isEmpty()
                                       && canonicalQmlKey(key) == m_canonicalKey)
                                       append(notif);
                               });
    }
    clear();
    Q_EMIT notifierChanged();
}

void NotificationModel::setKey(const QVariant &key)
{
    const QVariant plain = plainVariant(key);
    if (m_key == plain)
        return;
    m_key = plain;
    m_canonicalKey = plain.isValid() ? canonicalQmlKey(plain) : QString();
    clear();
    Q_EMIT keyChanged();
}

void NotificationModel::setCapacity(int capacity)
{
    capacity = std::max(capacity, 1);
    if (m_capacity == capacity)
        return;
    m_capacity = capacity;
    trim();
    Q_EMIT capacityChanged();
}

void NotificationModel::setRoles(const QStringList &roles)
{
    if (m_roles == roles)
        return;
    beginResetModel();
    m_roles = roles;
    endResetModel();
    Q_EMIT rolesChanged();
}

void NotificationModel::append(const QVariant &notif)
{
    const QVariant plain = plainVariant(notif);
    if (m_roles.isEmpty() && plain.metaType().id() == QMetaType::QVariantMap) {
        // Roles must be known before rows use them: learn them from the first object.
        QStringList fields = plain.toMap().keys();
        setRoles(fields);
    }
    const int row = int(m_rows.size());
    beginInsertRows(QModelIndex(), row, row);
    m_rows.append(plain);
    endInsertRows();
    trim();
    Q_EMIT countChanged();
}

void NotificationModel::trim()
{
    const int excess = int(m_rows.size()) - m_capacity;
    if (excess <= 0)
        return;
    beginRemoveRows(QModelIndex(), 0, excess - 1);
    m_rows.remove(0, excess);
    endRemoveRows();
    Q_EMIT countChanged();
}

void NotificationModel::clear()
{
    if (m_rows.isEmpty())
        return;
    beginResetModel();
    m_rows.clear();
    endResetModel();
    Q_EMIT countChanged();
}

QVariant NotificationModel::get(int row) const
{
    return row >= 0 && row < m_rows.size() ? m_rows.at(row) : QVariant();
}

int NotificationModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_rows.size());
}

QVariant NotificationModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return QVariant();
    const QVariant &row = m_rows.at(index.row());
    if (role == NotifRole || role == Qt::DisplayRole)
        return row;
    const int field = role - NotifRole - 1;
    if (field < 0 || field >= m_roles.size())
        return QVariant();
    return row.toMap().value(m_roles.at(field));
}

QHash<int, QByteArray> NotificationModel::roleNames() const
{
    QHash<int, QByteArray> names{ { NotifRole, QByteArrayLiteral("notif") } };
    for (int i = 0; i < m_roles.size(); ++i)
        names.insert(NotifRole + 1 + i, m_roles.at(i).toUtf8());
    return names;
}

} // namespace QtNotif
