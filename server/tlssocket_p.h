#pragma once

#include "bytequeue_p.h"
#include "tlscontext_p.h"
#include "writethroughsocket_p.h"

#include <memory>

using SSL = struct ssl_st;

namespace QtNotif {

// A TCP connection of the server with TLS over it, done with OpenSSL on the socket's bytes
// rather than by QSslSocket, which costs an idle connection about 60 KiB more (four buffers of
// 16 to 32 KiB kept for its life, and an SSL_CTX of its own) and writes each frame through two
// buffered sockets (docs/performance.md, "TLS in the server's process").
//
// The socket's QIODevice stream stays the encrypted one underneath: what the socket reads is
// ciphertext, which decrypt() turns into plaintext(); what is written to it (write()) is
// plaintext, encrypted on its way, and goes out as WriteThroughSocket sends it. OpenSSL keeps
// no buffer while the connection is idle (SSL_MODE_RELEASE_BUFFERS).
//
// Over TLS 1.3 the session tickets, which OpenSSL writes as the handshake ends, wait for the
// server's first write (the upgrade's answer) and go out with it: one system call, not two.
class TlsSocket : public WriteThroughSocket
{
    Q_OBJECT

public:
    explicit TlsSocket(std::shared_ptr<TlsContext> context, QObject *parent = nullptr);
    ~TlsSocket() override;

    // Starts the server's side of the TLS handshake on the connected socket: encrypted() or
    // handshakeFailed() tells its end. Call once the socket has its descriptor.
    void startServerEncryption();
    bool isEncrypted() const { return m_encrypted; }

    // Decrypts what the socket has read into plaintext(). Returns false when the TLS layer
    // failed (a record that does not decrypt, say), with errorString(): nothing more is read
    // or written then, and the connection is to be aborted.
    bool decrypt();
    ByteQueue &plaintext() { return m_plaintext; }

    // Sends TLS's close_notify first, once, when the connection is encrypted.
    void disconnectFromHost() override;

Q_SIGNALS:
    void encrypted();
    // clientLeft: the client closed the connection in the handshake (which a client that does
    // not trust the certificate does), rather than a handshake that failed here.
    void handshakeFailed(const QString &reason, bool clientLeft);

protected:
    qint64 writeData(const char *data, qint64 size) override;

private:
    struct Bio;
    void continueHandshake();
    void failHandshake(const QString &reason, bool clientLeft);
    // errorString() from OpenSSL's error queue, or from fallback where it is empty.
    void setOpenSslError(const char *fallback);
    // Writes m_held, if anything, and empties it; false when the socket refused.
    bool sendHeld();

    SSL *m_ssl = nullptr;
    ByteQueue m_plaintext;
    // Ciphertext OpenSSL wrote that waits to go out with the next: what it writes while
    // m_holding, and after that until the next write (see continueHandshake()).
    QByteArray m_held;
    bool m_holding = false;
    bool m_encrypted = false;
    bool m_failed = false;
};

} // namespace QtNotif
