#pragma once

#include <QtNotif/global.h>

#include <QtCore/QJsonObject>
#include <QtCore/QMetaType>
#include <QtCore/QString>
#include <QtCore/QVariantMap>

namespace QtNotif {

// Who a client is, as the server's authenticator decided at the handshake (Os_notif's
// identity: a user id, or none for an anonymous client).
//
// Two identities are the same user when their user ids are equal; anonymous identities are
// never the same user as anything, so notFor a user and unlistenUser never reach anonymous
// clients. Attributes (roles, claims, display name) travel with the identity to prepare and
// to the listen authoriser, and to the client in the welcome frame.
class QTNOTIF_SERVER_EXPORT Identity
{
public:
    // The anonymous identity: valid, listens and receives like any other.
    Identity() = default;

    static Identity anonymous() { return {}; }
    static Identity user(const QString &userId, const QVariantMap &attributes = {});

    bool isAnonymous() const { return m_userId.isEmpty(); }
    // The user id; empty when anonymous.
    QString userId() const { return m_userId; }
    QVariantMap attributes() const { return m_attributes; }
    QVariant attribute(const QString &name) const { return m_attributes.value(name); }

    // The "identity" object of the welcome and identity frames.
    QJsonObject toJson() const;

    friend bool operator==(const Identity &a, const Identity &b)
    {
        return a.m_userId == b.m_userId && a.m_attributes == b.m_attributes;
    }

private:
    QString m_userId;
    QVariantMap m_attributes;
};

} // namespace QtNotif

Q_DECLARE_METATYPE(QtNotif::Identity)
