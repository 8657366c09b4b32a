#include <QtNotif/identity.h>

#include <QtNotif/codec.h>

namespace QtNotif {

Identity Identity::user(const QString &userId, const QVariantMap &attributes)
{
    Identity identity;
    identity.m_userId = userId;
    identity.m_attributes = attributes;
    return identity;
}

QJsonObject Identity::toJson() const
{
    return { { QLatin1String("user"),
               isAnonymous() ? QJsonValue(QJsonValue::Null) : QJsonValue(m_userId) },
             { QLatin1String("attributes"), variantToJson(m_attributes) } };
}

} // namespace QtNotif
