#include "wireframe_p.h"

namespace QtNotif {

WireFrame::WireFrame(const QString &text)
{
    const QByteArray payload = text.toUtf8();
    writeHeader(payload.size());
    m_bytes.append(payload);
}

WireFrame WireFrame::notification(QByteArrayView notifierJson, QByteArrayView keyJson, quint64 seq,
                                  QByteArrayView dataJson)
{
    constexpr QByteArrayView Op = "{\"op\":\"notif\",\"notifier\":";
    constexpr QByteArrayView Key = ",\"key\":";
    constexpr QByteArrayView Seq = ",\"seq\":";
    constexpr QByteArrayView Data = ",\"data\":";
    char digits[20];
    qsizetype digitCount = 0;
    do {
        digits[digitCount++] = char('0' + seq % 10);
        seq /= 10;
    } while (seq);
    const qsizetype size = Op.size() + notifierJson.size() + Key.size() + keyJson.size()
                           + Seq.size() + digitCount + Data.size() + dataJson.size() + 1;
    WireFrame frame;
    frame.writeHeader(size);
    QByteArray &bytes = frame.m_bytes;
    bytes.append(Op).append(notifierJson).append(Key).append(keyJson).append(Seq);
    while (digitCount)
        bytes.append(digits[--digitCount]);
    bytes.append(Data).append(dataJson).append('}');
    return frame;
}

WireFrame WireFrame::control(quint8 opcode, QByteArrayView payload)
{
    Q_ASSERT(payload.size() <= 125);
    WireFrame frame;
    frame.writeHeader(payload.size(), opcode);
    frame.m_bytes.append(payload);
    return frame;
}

WireFrame WireFrame::ping(QByteArrayView data)
{
    return control(0x9, data);
}

WireFrame WireFrame::pong(QByteArrayView data)
{
    return control(0xA, data);
}

WireFrame WireFrame::raw(QByteArray bytes)
{
    WireFrame frame;
    frame.m_bytes = std::move(bytes);
    return frame;
}

WireFrame WireFrame::close(quint16 code, const QString &reason)
{
    QByteArray payload(2, Qt::Uninitialized);
    payload[0] = char(code >> 8);
    payload[1] = char(code);
    // 123 bytes of reason at most, cut before a character that would not fit whole.
    const QByteArray utf8 = reason.toUtf8();
    qsizetype size = std::min<qsizetype>(utf8.size(), 123);
    while (size < utf8.size() && size > 0 && (uchar(utf8.at(size)) & 0xc0) == 0x80)
        --size;
    payload.append(utf8.first(size));
    return control(0x8, payload);
}

void WireFrame::writeHeader(qsizetype payloadSize, quint8 opcode)
{
    const auto size = quint64(payloadSize);
    // FIN and the opcode; then the length in the fewest bytes (RFC 6455, 5.2), unmasked.
    char header[10] = { char(0x80 | opcode) };
    if (size <= 125) {
        header[1] = char(size);
        m_headerSize = 2;
    } else if (size <= 0xffff) {
        header[1] = char(126);
        header[2] = char(size >> 8);
        header[3] = char(size);
        m_headerSize = 4;
    } else {
        header[1] = char(127);
        for (int i = 0; i < 8; ++i)
            header[2 + i] = char(size >> (8 * (7 - i)));
        m_headerSize = 10;
    }
    m_bytes.reserve(m_headerSize + payloadSize);
    m_bytes.append(header, m_headerSize);
}

} // namespace QtNotif
