#pragma once

#include <QtNotif/handshakerequest.h>
#include <QtNotif/identity.h>

#include <QtCore/QString>

#include <functional>

namespace QtNotif {

// What an authenticator decides for one handshake: accept with an identity (anonymous
// included), or refuse with a reason the client receives as the close reason (close code
// 4401). Keep reasons short: a WebSocket close reason holds at most 123 bytes.
class QTNOTIF_SERVER_EXPORT AuthResult
{
public:
    static AuthResult accept(const Identity &identity) { return AuthResult(identity, {}, true); }
    static AuthResult anonymous() { return accept(Identity::anonymous()); }
    static AuthResult refuse(const QString &reason) { return AuthResult({}, reason, false); }

    bool isAccepted() const { return m_accepted; }
    Identity identity() const { return m_identity; }
    QString reason() const { return m_reason; }

private:
    AuthResult(const Identity &identity, const QString &reason, bool accepted)
        : m_identity(identity), m_reason(reason), m_accepted(accepted)
    {
    }
    Identity m_identity;
    QString m_reason;
    bool m_accepted = false;
};

// Called once per handshake, on the server's thread, before the client can send anything.
using Authenticator = std::function<AuthResult(const HandshakeRequest &request)>;

} // namespace QtNotif
