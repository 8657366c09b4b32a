#pragma once

#include <QtCore/QByteArray>
#include <QtCore/QByteArrayView>
#include <QtCore/QString>

namespace QtNotif {

// A WebSocket text frame as the server puts it on the wire: the header, then the UTF-8
// payload, in one unfragmented frame. Server frames are not masked (RFC 6455, 5.1), so the
// same bytes serve every client: a notification is encoded and framed once per notify,
// whatever the number of its recipients, and written to each client's TCP socket as it is.
// Implicitly shared, as the QByteArray it holds.
class WireFrame
{
public:
    // A null frame.
    WireFrame() = default;
    // Frames text in one unfragmented frame, as UTF-8.
    explicit WireFrame(const QString &text);
    // The notif frame of Protocol::notifFrame() from the UTF-8 of its parts (notifier name and
    // key as JSON text, data as Protocol::toJsonUtf8()), assembled in place: the same bytes as
    // WireFrame(notifFrame(...)) without the round trip through UTF-16.
    static WireFrame notification(QByteArrayView notifierJson, QByteArrayView keyJson, quint64 seq,
                                  QByteArrayView dataJson);
    // Control frames (RFC 6455, 5.5): a ping or a pong with its application data (125 bytes
    // at most), and a close frame with its code and reason, the reason cut to fit.
    static WireFrame ping(QByteArrayView data = {});
    static WireFrame pong(QByteArrayView data);
    static WireFrame close(quint16 code, const QString &reason);
    // Bytes that are not a frame, written as they are among frames: the upgrade's 101
    // response (SocketLink's preamble). Its payload() is all of them.
    static WireFrame raw(QByteArray bytes);

    bool isNull() const { return m_bytes.isNull(); }
    // Header and payload, ready for the socket.
    const QByteArray &bytes() const { return m_bytes; }
    QByteArrayView payload() const { return QByteArrayView(m_bytes).sliced(m_headerSize); }
    // The payload decoded back: for the send observer.
    QString text() const { return QString::fromUtf8(payload()); }

private:
    // Makes room for the header of a payload of size bytes at the start of m_bytes, and
    // writes it: a final frame of the opcode, text by default.
    void writeHeader(qsizetype size, quint8 opcode = 0x1);
    static WireFrame control(quint8 opcode, QByteArrayView payload);

    QByteArray m_bytes;
    qsizetype m_headerSize = 0;
};

} // namespace QtNotif
