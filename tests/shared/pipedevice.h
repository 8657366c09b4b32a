// A QIODevice whose bytes, written at one end, are read at the other, like a socket's: sequential,
// and what has not been written yet is not there. For readers of a stream fed in pieces
// (tst_framereader, and the fuzzer fuzz_websocket).
#pragma once

#include <QtCore/QByteArray>
#include <QtCore/QIODevice>

#include <algorithm>
#include <cstring>

class PipeDevice : public QIODevice
{
public:
    PipeDevice() { open(QIODevice::ReadWrite); }
    bool isSequential() const override { return true; }
    qint64 bytesAvailable() const override { return m_bytes.size() + QIODevice::bytesAvailable(); }

protected:
    qint64 readData(char *data, qint64 maxSize) override
    {
        const qint64 size = std::min<qint64>(maxSize, m_bytes.size());
        if (size > 0) {
            memcpy(data, m_bytes.constData(), size_t(size));
            m_bytes.remove(0, size);
        }
        return size;
    }
    qint64 writeData(const char *data, qint64 size) override
    {
        m_bytes.append(data, size);
        return size;
    }

private:
    QByteArray m_bytes;
};
