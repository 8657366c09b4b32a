#pragma once

#include <QtNetwork/QSslConfiguration>

#include <memory>

using SSL_CTX = struct ssl_ctx_st;

namespace QtNotif {

// The server's side of TLS, made once from a QSslConfiguration and shared by all the
// connections it serves, in every thread (an OpenSSL SSL_CTX). QSslSocket makes one for each
// connection instead.
//
// Of the configuration it takes the certificate chain and private key, protocol() (TLS 1.2 and
// 1.3 only), ciphers() and ellipticCurves() where they differ from Qt's defaults,
// peerVerifyMode() with caCertificates() for client certificates (VerifyPeer asks for one
// from those CAs and requires it, QueryPeer asks for any and requires none; the others ask for
// none), and QSsl::SslOptionDisableSessionTickets. The rest is OpenSSL's defaults with the
// system's configuration, as for QSslSocket.
class TlsContext
{
public:
    // The context of configuration; null, with error set, when it cannot serve it (no
    // certificate, a key that does not match it, a protocol before TLS 1.2, ciphers or curves
    // OpenSSL does not take, ciphers that serve none of the protocols allowed).
    static std::shared_ptr<TlsContext> make(const QSslConfiguration &configuration, QString *error);
    ~TlsContext();
    Q_DISABLE_COPY_MOVE(TlsContext)

    SSL_CTX *handle() const { return m_context; }

private:
    explicit TlsContext(SSL_CTX *context) : m_context(context) { }

    SSL_CTX *m_context;
};

// OpenSSL's last error, cleared from the thread's queue with the others, or fallback.
QString takeOpenSslError(const char *fallback);

} // namespace QtNotif
