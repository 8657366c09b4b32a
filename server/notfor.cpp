#include <QtNotif/notfor.h>

namespace QtNotif {

NotFor NotFor::connection(ConnectionId id)
{
    NotFor notFor;
    notFor.m_kind = Kind::Connection;
    notFor.m_connection = id;
    return notFor;
}

NotFor NotFor::user(const QString &userId)
{
    NotFor notFor;
    notFor.m_kind = Kind::User;
    notFor.m_userId = userId;
    return notFor;
}

} // namespace QtNotif
