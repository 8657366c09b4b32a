#pragma once

#include <QtNotif/global.h>

#include <QtCore/QString>

namespace QtNotif {

// Which clients a notify leaves out (Eliom's ?notfor): nobody, one connection (the calling
// client, "me": take it from Request::me()), or every connection of one user.
class QTNOTIF_SERVER_EXPORT NotFor
{
public:
    enum class Kind { Nobody, Connection, User };

    NotFor() = default;
    static NotFor nobody() { return {}; }
    static NotFor connection(ConnectionId id);
    // Every client of this user id; an empty id excludes nobody (anonymous is never a user).
    static NotFor user(const QString &userId);

    Kind kind() const { return m_kind; }
    ConnectionId connectionId() const { return m_connection; }
    QString userId() const { return m_userId; }

    // Whether a client with this connection id and user id is left out.
    bool excludes(ConnectionId id, const QString &userId) const
    {
        switch (m_kind) {
        case Kind::Nobody:
            return false;
        case Kind::Connection:
            return id == m_connection;
        case Kind::User:
            return !userId.isEmpty() && userId == m_userId;
        }
        return false;
    }

private:
    Kind m_kind = Kind::Nobody;
    ConnectionId m_connection = 0;
    QString m_userId;
};

} // namespace QtNotif
