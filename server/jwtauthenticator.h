#pragma once

#include <QtNotif/authresult.h>
#include <QtNotif/handshakerequest.h>

#include <QtCore/QByteArray>
#include <QtCore/QSharedDataPointer>
#include <QtCore/QString>

#include <chrono>

namespace QtNotif {

class JwtAuthenticatorData;

// An authenticator for JSON Web Tokens (RFC 7519), verified with libjwt:
//
//   server.setAuthenticator(JwtAuthenticator(JwtAuthenticator::Algorithm::HS256, secret));
//
// The token comes from, in this order: the "Authorization: Bearer <token>" header (what
// QtNotif::Client sends), a subprotocol "qtnotif.bearer.<token>" offered next to qtnotif.v1
// (what a browser can send), or the URL's query parameter access_token (see
// setQueryParameter()).
//
// A token is accepted when its signature verifies with the configured algorithm and key (a
// token signed with any other algorithm, "none" included, is refused), and when its "exp",
// "nbf", "iss" and "aud" claims hold. The identity is the user named by the "sub" claim (see
// setUserClaim()), with every claim of the token as its attributes, so that a listen
// authoriser or prepare can use them (a "rooms" claim, say).
//
// Refusals: no token, a bad signature or malformed token, failed claims get close code 4401
// with a short reason; an expired token gets 4419, and a connection whose token expires while
// it is open is closed with 4419 at that moment. QtNotif::Client then asks the application
// for a fresh token and reconnects.
//
// A value type: copy it, change the copy's settings, and give it to Server::setAuthenticator().
class QTNOTIF_SERVER_EXPORT JwtAuthenticator
{
public:
    // HS*: HMAC with a shared secret. RS*: RSA, ES*: ECDSA, with the issuer's public key.
    enum class Algorithm { HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, ES512 };

    // key is the shared secret for HS*, and the PEM public key for RS* and ES*.
    JwtAuthenticator(Algorithm algorithm, const QByteArray &key);
    JwtAuthenticator(const JwtAuthenticator &other);
    JwtAuthenticator(JwtAuthenticator &&other) noexcept;
    JwtAuthenticator &operator=(const JwtAuthenticator &other);
    JwtAuthenticator &operator=(JwtAuthenticator &&other) noexcept;
    ~JwtAuthenticator();

    Algorithm algorithm() const;

    // The claim holding the user id: a string or an integer. "sub" by default. A token
    // without it is refused.
    void setUserClaim(const QString &claim);
    QString userClaim() const;
    // When set, the "iss" claim must equal issuer. Empty (not checked) by default.
    void setIssuer(const QString &issuer);
    QString issuer() const;
    // When set, the "aud" claim (a string or an array of strings) must name audience. Empty
    // (not checked) by default.
    void setAudience(const QString &audience);
    QString audience() const;
    // Clock skew allowed between the token's issuer and this server, for "exp" and "nbf".
    // 0 by default. The connection is closed at exp + leeway.
    void setLeeway(std::chrono::seconds leeway);
    std::chrono::seconds leeway() const;
    // Whether a token without "exp" is refused. Off by default: such a token is valid for as
    // long as the connection lasts.
    void setRequireExpiry(bool require);
    bool requiresExpiry() const;
    // Whether a handshake without any token is accepted as anonymous (a token that is there
    // and invalid is still refused). Off by default.
    void setAllowAnonymous(bool allow);
    bool allowsAnonymous() const;
    // The URL query parameter a token may come in, "access_token" by default (RFC 6750);
    // empty to not read tokens from URLs. URLs end up in proxy and server logs: prefer the
    // header or the subprotocol.
    void setQueryParameter(const QString &name);
    QString queryParameter() const;

    // Checks one token; what the server does at a handshake once the token is found.
    AuthResult verify(const QByteArray &token) const;
    // Finds the token in the handshake and checks it: an Authenticator.
    AuthResult operator()(const HandshakeRequest &request) const;

    // The token of a handshake, from the places above; null when it has none.
    QByteArray tokenOf(const HandshakeRequest &request) const;

private:
    QSharedDataPointer<JwtAuthenticatorData> d;
};

} // namespace QtNotif
