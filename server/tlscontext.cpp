#include "tlscontext_p.h"

#include <QtNetwork/QSslCipher>
#include <QtNetwork/QSslEllipticCurve>
#include <QtNetwork/QSslKey>
#include <QtNetwork/QSslSocket>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace QtNotif {

QString takeOpenSslError(const char *fallback)
{
    unsigned long code = 0;
    unsigned long last = 0;
    while ((code = ERR_get_error()) != 0)
        last = code;
    if (last == 0)
        return QString::fromLatin1(fallback);
    char text[256];
    ERR_error_string_n(last, text, sizeof text);
    return QString::fromLatin1(text);
}

namespace {

X509 *toX509(const QSslCertificate &certificate)
{
    const QByteArray der = certificate.toDer();
    const auto *bytes = reinterpret_cast<const unsigned char *>(der.constData());
    return d2i_X509(nullptr, &bytes, long(der.size()));
}

// Whether the configuration leaves a setting at Qt's default, which leaves OpenSSL's own
// default (with the system's configuration) in place.
template<typename T>
bool isQtDefault(const QList<T> &chosen, const QList<T> &qtDefault)
{
    return chosen.isEmpty() || chosen == qtDefault;
}

bool setCertificate(SSL_CTX *context, const QSslConfiguration &configuration, QString *error)
{
    // localCertificate() is the chain's first.
    const QList<QSslCertificate> chain = configuration.localCertificateChain();
    if (configuration.localCertificate().isNull() || configuration.privateKey().isNull()) {
        *error = QStringLiteral("the TLS configuration needs a certificate and its private key");
        return false;
    }
    for (qsizetype i = 0; i < chain.size(); ++i) {
        X509 *certificate = toX509(chain.at(i));
        const int done = certificate == nullptr ? 0
                         : i == 0               ? SSL_CTX_use_certificate(context, certificate)
                                                : SSL_CTX_add1_chain_cert(context, certificate);
        X509_free(certificate);
        if (done != 1) {
            *error = QStringLiteral("unusable certificate: %1").arg(takeOpenSslError("not in DER"));
            return false;
        }
    }
    // The key as Qt's backend exports it, unencrypted, for OpenSSL to read in any algorithm.
    const QByteArray pem = configuration.privateKey().toPem();
    BIO *bio = BIO_new_mem_buf(pem.constData(), int(pem.size()));
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(bio);
    if (!key) {
        *error = QStringLiteral("unusable private key: %1")
                         .arg(takeOpenSslError("Qt cannot export it"));
        return false;
    }
    // OpenSSL compares the key with the certificate as it takes it.
    const bool used = SSL_CTX_use_PrivateKey(context, key) == 1;
    EVP_PKEY_free(key);
    if (!used) {
        *error = QStringLiteral("the private key does not match the certificate: %1")
                         .arg(takeOpenSslError(""));
    }
    return used;
}

bool setProtocol(SSL_CTX *context, QSsl::SslProtocol protocol, QString *error)
{
    int lowest = TLS1_2_VERSION;
    int highest = 0; // the latest OpenSSL knows
    switch (protocol) {
    case QSsl::TlsV1_2:
        highest = TLS1_2_VERSION;
        break;
    case QSsl::TlsV1_3:
        lowest = highest = TLS1_3_VERSION;
        break;
    case QSsl::TlsV1_3OrLater:
        lowest = TLS1_3_VERSION;
        break;
    case QSsl::TlsV1_2OrLater:
    case QSsl::SecureProtocols:
    case QSsl::AnyProtocol:
        break;
    default:
        *error = QStringLiteral("the server speaks TLS 1.2 and 1.3 only: set the configuration's "
                                "protocol to QSsl::TlsV1_2OrLater, say");
        return false;
    }
    SSL_CTX_set_min_proto_version(context, lowest);
    SSL_CTX_set_max_proto_version(context, highest);
    return true;
}

bool setCiphers(SSL_CTX *context, const QSslConfiguration &configuration, QString *error)
{
    const QList<QSslCipher> ciphers = configuration.ciphers();
    if (!isQtDefault(ciphers, QSslConfiguration::defaultConfiguration().ciphers())) {
        // OpenSSL takes TLS 1.3's suites apart from the ciphers of earlier versions.
        QByteArrayList tls13;
        QByteArrayList earlier;
        for (const QSslCipher &cipher : ciphers) {
            const QByteArray name = cipher.name().toLatin1();
            (name.startsWith("TLS_") ? tls13 : earlier).append(name);
        }
        // A protocol left without a cipher: none where the protocols allowed have none.
        const bool tls12 = SSL_CTX_get_min_proto_version(context) <= TLS1_2_VERSION;
        const bool tls13Allowed = SSL_CTX_get_max_proto_version(context) == 0
                                  || SSL_CTX_get_max_proto_version(context) >= TLS1_3_VERSION;
        if ((!tls12 || earlier.isEmpty()) && (!tls13Allowed || tls13.isEmpty())) {
            *error = QStringLiteral("none of the configuration's ciphers serves its protocol");
            return false;
        }
        if (earlier.isEmpty())
            SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION);
        const bool set = (earlier.isEmpty()
                          || SSL_CTX_set_cipher_list(context, earlier.join(':').constData()) == 1)
                         && SSL_CTX_set_ciphersuites(context, tls13.join(':').constData()) == 1;
        if (!set) {
            *error = QStringLiteral("unusable ciphers: %1").arg(takeOpenSslError(""));
            return false;
        }
    }
    const QList<QSslEllipticCurve> curves = configuration.ellipticCurves();
    if (!isQtDefault(curves, QSslConfiguration::defaultConfiguration().ellipticCurves())) {
        QByteArrayList names;
        for (const QSslEllipticCurve &curve : curves)
            names.append(curve.shortName().toLatin1());
        if (SSL_CTX_set1_groups_list(context, names.join(':').constData()) != 1) {
            *error = QStringLiteral("unusable elliptic curves: %1").arg(takeOpenSslError(""));
            return false;
        }
    }
    return true;
}

int acceptAnyCertificate(int, X509_STORE_CTX *)
{
    return 1;
}

bool setPeerVerification(SSL_CTX *context, const QSslConfiguration &configuration, QString *error)
{
    switch (configuration.peerVerifyMode()) {
    case QSslSocket::VerifyPeer: {
        X509_STORE *store = SSL_CTX_get_cert_store(context);
        for (const QSslCertificate &authority : configuration.caCertificates()) {
            X509 *certificate = toX509(authority);
            // The authorities' names go in the certificate request, for the client to choose.
            const bool added = certificate != nullptr
                               && X509_STORE_add_cert(store, certificate) == 1
                               && SSL_CTX_add_client_CA(context, certificate) == 1;
            X509_free(certificate);
            if (!added) {
                *error = QStringLiteral("unusable CA certificate: %1")
                                 .arg(takeOpenSslError("not in DER"));
                return false;
            }
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
        return true;
    }
    case QSslSocket::QueryPeer:
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, acceptAnyCertificate);
        return true;
    default:
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nullptr);
        return true;
    }
}

} // namespace

std::shared_ptr<TlsContext> TlsContext::make(const QSslConfiguration &configuration, QString *error)
{
    ERR_clear_error();
    SSL_CTX *context = SSL_CTX_new(TLS_server_method());
    if (!context) {
        *error = QStringLiteral("OpenSSL cannot make a TLS context: %1").arg(takeOpenSslError(""));
        return nullptr;
    }
    std::shared_ptr<TlsContext> made(new TlsContext(context));
    if (!setCertificate(context, configuration, error)
        || !setProtocol(context, configuration.protocol(), error)
        || !setCiphers(context, configuration, error)
        || !setPeerVerification(context, configuration, error)) {
        return nullptr;
    }
    // No buffer kept by an idle connection; no renegotiation, which a client could ask for
    // over and over; the server's order of ciphers, as QSslSocket's default.
    SSL_CTX_set_mode(context, SSL_MODE_RELEASE_BUFFERS);
    uint64_t options = SSL_OP_NO_RENEGOTIATION;
    if (!configuration.testSslOption(QSsl::SslOptionDisableServerCipherPreference))
        options |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    // One TLS 1.3 session ticket per handshake rather than OpenSSL's two, meant for browsers
    // that open connections in parallel: a client of qtnotif keeps one connection and needs
    // one ticket to resume it, and each ticket costs the server about 70 µs
    // (docs/performance.md, "TLS handshakes"). None when tickets are disabled: TLS 1.3 would
    // otherwise issue tickets that name sessions in the server's cache, which is off.
    const bool noTickets = configuration.testSslOption(QSsl::SslOptionDisableSessionTickets);
    if (noTickets)
        options |= SSL_OP_NO_TICKET;
    SSL_CTX_set_options(context, options);
    SSL_CTX_set_num_tickets(context, noTickets ? 0 : 1);
    // Sessions resume from the tickets the clients keep; the server keeps none, so that its
    // memory does not grow with the clients it has seen. A session of a client with a
    // certificate names the context it was verified in.
    SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_OFF);
    static const unsigned char SessionContext[] = "qtnotif";
    SSL_CTX_set_session_id_context(context, SessionContext, sizeof SessionContext - 1);
    return made;
}

TlsContext::~TlsContext()
{
    // Connections made from it hold a reference of their own.
    SSL_CTX_free(m_context);
}

} // namespace QtNotif
