#include "wireframe_p.h"

namespace QtNotif {

WireFrame::WireFrame(const QString &text)
{
    const QByteArray payload = text.toUtf8();
    const auto size = quint64(payload.size());
    // FIN and the text opcode; then the length in the fewest bytes (RFC 6455, 5.2), unmasked.
    char header[10] = { char(0x81) };
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
    m_bytes.reserve(m_headerSize + payload.size());
    m_bytes.append(header, m_headerSize).append(payload);
}

} // namespace QtNotif
