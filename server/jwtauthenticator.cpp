#include <QtNotif/jwtauthenticator.h>

#include "logging_p.h"

#include <QtNotif/protocol.h>

#include <QtCore/QDateTime>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>

#include <jwt.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>

namespace QtNotif {

namespace {

// Longer tokens are refused before parsing. Real ones are well under 2 KiB; Qt bounds the
// handshake's headers too, but a query parameter or a subprotocol could carry more.
constexpr qsizetype MaxTokenSize = 16 * 1024;

// 9999-12-31T23:59:59Z, as a NumericDate.
constexpr double LatestNumericDate = 253402300799;

jwt_alg_t toLibjwt(JwtAuthenticator::Algorithm algorithm)
{
    using A = JwtAuthenticator::Algorithm;
    switch (algorithm) {
    case A::HS256:
        return JWT_ALG_HS256;
    case A::HS384:
        return JWT_ALG_HS384;
    case A::HS512:
        return JWT_ALG_HS512;
    case A::RS256:
        return JWT_ALG_RS256;
    case A::RS384:
        return JWT_ALG_RS384;
    case A::RS512:
        return JWT_ALG_RS512;
    case A::ES256:
        return JWT_ALG_ES256;
    case A::ES384:
        return JWT_ALG_ES384;
    case A::ES512:
        return JWT_ALG_ES512;
    }
    return JWT_ALG_INVAL;
}

struct JwtDeleter
{
    void operator()(jwt_t *jwt) const { jwt_free(jwt); }
};

struct FreeDeleter
{
    void operator()(char *text) const { std::free(text); }
};

// The verified token's claims; nullopt when the token is malformed, signed with another
// algorithm, or its signature does not verify.
std::optional<QJsonObject> verifiedClaims(const QByteArray &token, jwt_alg_t algorithm,
                                          const QByteArray &key)
{
    jwt_t *decoded = nullptr;
    // QByteArray's data is NUL-terminated, as jwt_decode() wants.
    const int result
            = jwt_decode(&decoded, token.constData(),
                         reinterpret_cast<const unsigned char *>(key.constData()), int(key.size()));
    const std::unique_ptr<jwt_t, JwtDeleter> jwt(decoded);
    // Checking the algorithm is what stops a token signed with "none", or with HS256 keyed by
    // an RSA public key, from passing as the configured one.
    if (result != 0 || !jwt || jwt_get_alg(jwt.get()) != algorithm)
        return std::nullopt;
    const std::unique_ptr<char, FreeDeleter> json(jwt_get_grants_json(jwt.get(), nullptr));
    if (!json)
        return QJsonObject();
    const QJsonDocument document = QJsonDocument::fromJson(QByteArray(json.get()));
    if (!document.isObject())
        return std::nullopt;
    return document.object();
}

bool namesAudience(const QJsonValue &aud, const QString &audience)
{
    if (aud.isString())
        return aud.toString() == audience;
    const QJsonArray names = aud.toArray();
    return std::any_of(names.begin(), names.end(),
                       [&](const QJsonValue &name) { return name.toString() == audience; });
}

} // namespace

class JwtAuthenticatorData : public QSharedData
{
public:
    JwtAuthenticator::Algorithm algorithm = JwtAuthenticator::Algorithm::HS256;
    QByteArray key;
    QString userClaim = QStringLiteral("sub");
    QString issuer;
    QString audience;
    std::chrono::seconds leeway{ 0 };
    bool requireExpiry = false;
    bool allowAnonymous = false;
    QString queryParameter = QStringLiteral("access_token");
};

JwtAuthenticator::JwtAuthenticator(Algorithm algorithm, const QByteArray &key)
    : d(new JwtAuthenticatorData)
{
    d->algorithm = algorithm;
    d->key = key;
}

JwtAuthenticator::JwtAuthenticator(const JwtAuthenticator &other) = default;
JwtAuthenticator::JwtAuthenticator(JwtAuthenticator &&other) noexcept = default;
JwtAuthenticator &JwtAuthenticator::operator=(const JwtAuthenticator &other) = default;
JwtAuthenticator &JwtAuthenticator::operator=(JwtAuthenticator &&other) noexcept = default;
JwtAuthenticator::~JwtAuthenticator() = default;

JwtAuthenticator::Algorithm JwtAuthenticator::algorithm() const
{
    return d->algorithm;
}

void JwtAuthenticator::setUserClaim(const QString &claim)
{
    d->userClaim = claim;
}

QString JwtAuthenticator::userClaim() const
{
    return d->userClaim;
}

void JwtAuthenticator::setIssuer(const QString &issuer)
{
    d->issuer = issuer;
}

QString JwtAuthenticator::issuer() const
{
    return d->issuer;
}

void JwtAuthenticator::setAudience(const QString &audience)
{
    d->audience = audience;
}

QString JwtAuthenticator::audience() const
{
    return d->audience;
}

void JwtAuthenticator::setLeeway(std::chrono::seconds leeway)
{
    if (leeway.count() < 0) {
        qCWarning(lcServer) << "ignored a negative JWT leeway of" << leeway.count() << "s";
        return;
    }
    d->leeway = leeway;
}

std::chrono::seconds JwtAuthenticator::leeway() const
{
    return d->leeway;
}

void JwtAuthenticator::setRequireExpiry(bool require)
{
    d->requireExpiry = require;
}

bool JwtAuthenticator::requiresExpiry() const
{
    return d->requireExpiry;
}

void JwtAuthenticator::setAllowAnonymous(bool allow)
{
    d->allowAnonymous = allow;
}

bool JwtAuthenticator::allowsAnonymous() const
{
    return d->allowAnonymous;
}

void JwtAuthenticator::setQueryParameter(const QString &name)
{
    d->queryParameter = name;
}

QString JwtAuthenticator::queryParameter() const
{
    return d->queryParameter;
}

QByteArray JwtAuthenticator::tokenOf(const HandshakeRequest &request) const
{
    if (QByteArray token = request.bearerToken(); !token.isEmpty())
        return token;
    const QList<QByteArray> offered = request.subprotocols();
    for (const QByteArray &protocol : offered) {
        if (protocol.startsWith(Protocol::TokenSubprotocolPrefix.data()))
            return protocol.mid(Protocol::TokenSubprotocolPrefix.size());
    }
    if (!d->queryParameter.isEmpty())
        return request.queryItem(d->queryParameter).toUtf8();
    return {};
}

AuthResult JwtAuthenticator::operator()(const HandshakeRequest &request) const
{
    return verify(tokenOf(request));
}

AuthResult JwtAuthenticator::verify(const QByteArray &token) const
{
    if (token.isEmpty()) {
        return d->allowAnonymous ? AuthResult::anonymous()
                                 : AuthResult::refuse(QStringLiteral("no token"));
    }
    if (token.size() > MaxTokenSize)
        return AuthResult::refuse(QStringLiteral("token too long"));
    const std::optional<QJsonObject> claims = verifiedClaims(token, toLibjwt(d->algorithm), d->key);
    if (!claims)
        return AuthResult::refuse(QStringLiteral("invalid token"));

    // NumericDate claims are seconds since the epoch, possibly with a fraction.
    const double now = double(QDateTime::currentMSecsSinceEpoch()) / 1000;
    const double leeway = double(d->leeway.count());
    QDateTime expiresAt;
    if (const QJsonValue exp = claims->value(QLatin1String("exp")); !exp.isUndefined()) {
        if (!exp.isDouble())
            return AuthResult::refuse(QStringLiteral("invalid exp claim"));
        if (exp.toDouble() + leeway <= now)
            return AuthResult::expired();
        // Capped to the year 9999, so that any number converts to milliseconds.
        const double until = std::min(exp.toDouble() + leeway, LatestNumericDate);
        expiresAt = QDateTime::fromMSecsSinceEpoch(qint64(until * 1000), Qt::UTC);
    } else if (d->requireExpiry) {
        return AuthResult::refuse(QStringLiteral("token without exp claim"));
    }
    if (const QJsonValue nbf = claims->value(QLatin1String("nbf")); !nbf.isUndefined()) {
        if (!nbf.isDouble())
            return AuthResult::refuse(QStringLiteral("invalid nbf claim"));
        if (nbf.toDouble() > now + leeway)
            return AuthResult::refuse(QStringLiteral("token not valid yet"));
    }
    if (!d->issuer.isEmpty() && claims->value(QLatin1String("iss")).toString() != d->issuer)
        return AuthResult::refuse(QStringLiteral("wrong token issuer"));
    if (!d->audience.isEmpty() && !namesAudience(claims->value(QLatin1String("aud")), d->audience))
        return AuthResult::refuse(QStringLiteral("wrong token audience"));

    const QJsonValue user = claims->value(d->userClaim);
    QString userId;
    if (user.isString())
        userId = user.toString();
    else if (user.isDouble() && user.toDouble() == double(user.toInteger()))
        userId = QString::number(user.toInteger());
    if (userId.isEmpty())
        return AuthResult::refuse(QStringLiteral("token without a %1 claim").arg(d->userClaim));
    return AuthResult::accept(Identity::user(userId, claims->toVariantMap()), expiresAt);
}

} // namespace QtNotif
