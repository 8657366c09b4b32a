#include "tlssocket_p.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace QtNotif {

// OpenSSL reads and writes the socket's bytes through a BIO of its own kind: it reads what Qt
// has read from the network (QIODevice::read() of the socket, the ciphertext), and writes with
// WriteThroughSocket::writeData(), which sends at once when it can and leaves the rest to Qt.
struct TlsSocket::Bio
{
    static BIO_METHOD *method()
    {
        static BIO_METHOD *const made = [] {
            BIO_METHOD *method
                    = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "qtnotif socket");
            BIO_meth_set_read_ex(method, read);
            BIO_meth_set_write_ex(method, write);
            BIO_meth_set_ctrl(method, control);
            return method;
        }();
        return made;
    }

    static int read(BIO *bio, char *data, std::size_t size, std::size_t *done)
    {
        auto *socket = static_cast<TlsSocket *>(BIO_get_data(bio));
        BIO_clear_retry_flags(bio);
        const qint64 read = socket->QIODevice::read(data, qint64(size));
        if (read > 0) {
            *done = std::size_t(read);
            return 1;
        }
        if (read == 0) // nothing yet; -1 is the end of the stream
            BIO_set_retry_read(bio);
        *done = 0;
        return 0;
    }

    static int write(BIO *bio, const char *data, std::size_t size, std::size_t *done)
    {
        auto *socket = static_cast<TlsSocket *>(BIO_get_data(bio));
        BIO_clear_retry_flags(bio);
        if (socket->m_holding || !socket->m_held.isEmpty()) {
            // Behind what is held: all of it goes in one write, once no longer holding.
            socket->m_held.append(data, qsizetype(size));
            *done = size;
            return socket->m_holding || socket->sendHeld() ? 1 : 0;
        }
        const qint64 written = socket->WriteThroughSocket::writeData(data, qint64(size));
        if (written <= 0) {
            *done = 0;
            return 0;
        }
        *done = std::size_t(written);
        return 1;
    }

    static long control(BIO *, int command, long, void *)
    {
        return command == BIO_CTRL_FLUSH ? 1 : 0;
    }
};

TlsSocket::TlsSocket(std::shared_ptr<TlsContext> context, QObject *parent)
    : WriteThroughSocket(parent), m_ssl(SSL_new(context->handle()))
{
    BIO *bio = BIO_new(Bio::method());
    BIO_set_data(bio, this);
    BIO_set_init(bio, 1);
    SSL_set_bio(m_ssl, bio, bio);
    SSL_set_accept_state(m_ssl);
}

TlsSocket::~TlsSocket()
{
    // QAbstractSocket's destructor aborts the connection, which emits disconnected(): the
    // handshake's slot must not see this half-destroyed socket.
    disconnect(this, nullptr, this, nullptr);
    SSL_free(m_ssl);
}

void TlsSocket::startServerEncryption()
{
    connect(this, &QIODevice::readyRead, this, &TlsSocket::continueHandshake);
    connect(this, &QAbstractSocket::disconnected, this, [this] {
        if (!m_encrypted)
            failHandshake(QStringLiteral("the client left in the TLS handshake"), true);
    });
    continueHandshake();
}

void TlsSocket::continueHandshake()
{
    if (m_encrypted || m_failed)
        return;
    ERR_clear_error();
    m_holding = true;
    const int result = SSL_do_handshake(m_ssl);
    m_holding = false;
    // What the call wrote goes out in one write: the server's flight, or an alert. What it
    // wrote as a TLS 1.3 handshake ended is the session tickets, which the client has no use
    // for before the server's first bytes: they wait for them (Bio::write()).
    if (result != 1 || SSL_version(m_ssl) != TLS1_3_VERSION)
        sendHeld();
    if (result == 1) {
        m_encrypted = true;
        disconnect(this, nullptr, this, nullptr); // the handshake's connections
        Q_EMIT encrypted();
        return;
    }
    const int error = SSL_get_error(m_ssl, result);
    if (error == SSL_ERROR_WANT_READ)
        return;
    const bool clientLeft = error == SSL_ERROR_SYSCALL || error == SSL_ERROR_ZERO_RETURN
                            || state() != ConnectedState;
    failHandshake(takeOpenSslError(clientLeft ? "the client left in the TLS handshake"
                                              : "the TLS handshake failed"),
                  clientLeft);
}

void TlsSocket::failHandshake(const QString &reason, bool clientLeft)
{
    if (m_failed)
        return;
    m_failed = true;
    setErrorString(reason);
    disconnect(this, nullptr, this, nullptr);
    Q_EMIT handshakeFailed(reason, clientLeft);
}

bool TlsSocket::decrypt()
{
    if (!m_encrypted || m_failed)
        return !m_failed;
    ERR_clear_error();
    for (;;) {
        char block[16 * 1024];
        std::size_t read = 0;
        const int result = SSL_read_ex(m_ssl, block, sizeof block, &read);
        if (result == 1) {
            m_plaintext.append(block, qsizetype(read));
            continue;
        }
        switch (SSL_get_error(m_ssl, result)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_ZERO_RETURN: // the client's close_notify: its TCP end follows
            return true;
        case SSL_ERROR_SYSCALL:
            if (ERR_peek_error() == 0) // the end of the stream, without close_notify
                return true;
            [[fallthrough]];
        default:
            m_failed = true;
            setOpenSslError("a TLS record that does not decrypt");
            return false;
        }
    }
}

void TlsSocket::disconnectFromHost()
{
    // Not when aborted: abort() closes the device, then disconnects.
    if (m_encrypted && !m_failed && isOpen() && state() == ConnectedState
        && (SSL_get_shutdown(m_ssl) & SSL_SENT_SHUTDOWN) == 0) {
        ERR_clear_error();
        SSL_shutdown(m_ssl);
        ERR_clear_error();
    }
    WriteThroughSocket::disconnectFromHost();
}

qint64 TlsSocket::writeData(const char *data, qint64 size)
{
    if (!m_encrypted || m_failed) {
        setErrorString(QStringLiteral("writing to a TLS connection that is not encrypted"));
        return -1;
    }
    if (size <= 0)
        return 0;
    ERR_clear_error();
    std::size_t written = 0;
    // The BIO takes every byte (what the kernel does not, Qt's buffer does), so a write
    // completes at once, in records of up to 16 KiB.
    if (SSL_write_ex(m_ssl, data, std::size_t(size), &written) != 1) {
        m_failed = true;
        setOpenSslError("the TLS layer failed to write");
        return -1;
    }
    return qint64(written);
}

void TlsSocket::setOpenSslError(const char *fallback)
{
    setErrorString(takeOpenSslError(fallback));
}

bool TlsSocket::sendHeld()
{
    if (m_held.isEmpty())
        return true;
    const QByteArray held = std::exchange(m_held, QByteArray());
    return WriteThroughSocket::writeData(held.constData(), held.size()) > 0;
}

} // namespace QtNotif
