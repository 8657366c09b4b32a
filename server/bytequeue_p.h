#pragma once

#include <QtCore/QByteArray>
#include <QtCore/QByteArrayView>

#include <algorithm>

namespace QtNotif {

// Bytes received and not consumed yet, oldest first: the plaintext of a TLS connection, read
// by FrameReader as it reads a QIODevice (peek(), bytesAvailable(), skip(), read()). It holds
// no memory once emptied, so an idle connection's queue costs nothing.
class ByteQueue
{
public:
    qint64 bytesAvailable() const { return m_bytes.size() - m_begin; }
    bool isEmpty() const { return bytesAvailable() == 0; }

    void append(const char *data, qsizetype size)
    {
        if (size <= 0)
            return;
        compact();
        m_bytes.append(data, size);
    }

    qint64 peek(char *data, qint64 maxSize) const
    {
        const qint64 size = std::min(maxSize, bytesAvailable());
        if (size <= 0)
            return 0;
        const QByteArrayView available = QByteArrayView(m_bytes).sliced(m_begin, size);
        std::copy(available.begin(), available.end(), data);
        return size;
    }

    qint64 skip(qint64 maxSize)
    {
        const qint64 size = std::min(maxSize, bytesAvailable());
        m_begin += size;
        if (m_begin == m_bytes.size())
            *this = ByteQueue();
        return size;
    }

    QByteArray read(qint64 maxSize)
    {
        const qint64 size = std::min(maxSize, bytesAvailable());
        if (m_begin == 0 && size == m_bytes.size())
            return std::exchange(m_bytes, QByteArray());
        QByteArray bytes(m_bytes.constData() + m_begin, size);
        skip(size);
        return bytes;
    }

    QByteArray readAll() { return read(bytesAvailable()); }

private:
    // Drops the consumed bytes before more are appended, so that the queue does not grow with
    // what was read.
    void compact()
    {
        if (m_begin == 0)
            return;
        m_bytes.remove(0, m_begin);
        m_begin = 0;
    }

    QByteArray m_bytes;
    qsizetype m_begin = 0; // where the bytes not consumed begin
};

} // namespace QtNotif
