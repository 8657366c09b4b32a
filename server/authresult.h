#pragma once

#include <QtNotif/handshakerequest.h>
#include <QtNotif/identity.h>

#include <QtCore/QDateTime>
#include <QtCore/QString>

#include <functional>

namespace QtNotif {

// What an authenticator decides for one handshake: accept with an identity (anonymous
// included), or refuse with a reason the client receives as the close reason. Keep reasons
// short: a WebSocket close reason holds at most 123 bytes.
//
// Credentials that expire (a token's "exp") are accepted with their expiry: the server closes
// the connection with close code 4419 at that moment, and the client library asks the
// application for fresh credentials and reconnects. Credentials that have already expired are
// refused with expired(), also 4419, so that the client knows to ask for new ones rather than
// give up as it does on 4401.
class QTNOTIF_SERVER_EXPORT AuthResult
{
public:
    // Accepted until expiresAt (a null QDateTime: for as long as the connection lasts).
    static AuthResult accept(const Identity &identity, const QDateTime &expiresAt = {})
    {
        return AuthResult(identity, expiresAt, {}, Decision::Accepted);
    }
    static AuthResult anonymous() { return accept(Identity::anonymous()); }
    // Refused for good (close code 4401): the client library does not retry by itself.
    static AuthResult refuse(const QString &reason)
    {
        return AuthResult({}, {}, reason, Decision::Refused);
    }
    // Refused because the credentials have expired (close code 4419): the client library asks
    // for fresh ones and tries again.
    static AuthResult expired(const QString &reason = QStringLiteral("token expired"))
    {
        return AuthResult({}, {}, reason, Decision::Expired);
    }

    bool isAccepted() const { return m_decision == Decision::Accepted; }
    bool isExpired() const { return m_decision == Decision::Expired; }
    Identity identity() const { return m_identity; }
    // When an accepted connection's credentials expire; null when they do not.
    QDateTime expiresAt() const { return m_expiresAt; }
    QString reason() const { return m_reason; }

private:
    enum class Decision { Accepted, Refused, Expired };
    AuthResult(const Identity &identity, const QDateTime &expiresAt, const QString &reason,
               Decision decision)
        : m_identity(identity), m_expiresAt(expiresAt), m_reason(reason), m_decision(decision)
    {
    }
    Identity m_identity;
    QDateTime m_expiresAt;
    QString m_reason;
    Decision m_decision = Decision::Refused;
};

// Called once per handshake, on the server's thread, before the client can send anything.
using Authenticator = std::function<AuthResult(const HandshakeRequest &request)>;

} // namespace QtNotif
