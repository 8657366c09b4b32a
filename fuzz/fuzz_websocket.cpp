// libFuzzer target over the server's WebSocket layer: the reader of client frames
// (FrameReader) and the reader of upgrade requests (Upgrade). docs/fuzzing.md tells how to
// run it.
//
// The first byte chooses what the rest is:
//   - even: bytes a client sends after its upgrade: read by FrameReader, with the size limit
//     and the cuts the network makes taken from the second byte. The same bytes are read a
//     second time whole: both readings must give the same messages and end the same way;
//   - odd: an upgrade request, read by Upgrade::read().
//
// Besides the sanitizers and Q_ASSERT, it checks what the readers promise:
//   - FrameReader: text messages and close reasons are valid UTF-8; a message is no larger
//     than the limit; pings, pongs and close reasons fit a control frame; close codes are
//     those a peer may send; a failure has the code 1002, 1007 or 1009 and a reason; after
//     NeedMore, every byte not read is part of a frame not complete yet (so that nothing is
//     left unread forever), and after Failed, the reader stays failed;
//   - Upgrade: the status is one of 101, 400, 405, 426 and 505, with an answer that says it;
//     a 101 has a URL and Sec-WebSocket-Accept, an error a reason and no subprotocol.

#include "framereader_p.h"
#include "pipedevice.h"
#include "upgrade_p.h"

#include <QtCore/QBuffer>
#include <QtCore/QByteArray>
#include <QtCore/QList>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

using namespace QtNotif;

namespace {

// A check the fuzzer must never see fail.
void require(bool condition, const char *what)
{
    if (!condition) {
        fprintf(stderr, "broken promise: %s\n", what);
        abort();
    }
}

bool isValidCloseCode(quint16 code)
{
    return code >= 1000 && code < 5000 && code != 1004 && code != 1005 && code != 1006
           && (code < 1012 || code >= 3000);
}

struct Reading
{
    QList<FrameReader::Message> messages;
    quint16 failureCode = 0;
    qint64 left = 0; // bytes not read at the end
};

void checkMessage(const FrameReader::Message &message, qint64 limit)
{
    using Kind = FrameReader::Kind;
    switch (message.kind) {
    case Kind::Text:
        require(QByteArrayView(message.payload).isValidUtf8(), "text is UTF-8");
        require(message.payload.size() <= limit, "a message within the limit");
        break;
    case Kind::Binary:
        require(message.payload.size() <= limit, "a message within the limit");
        break;
    case Kind::Ping:
    case Kind::Pong:
        require(message.payload.size() <= 125, "control data of 125 bytes at most");
        break;
    case Kind::Close:
        require(message.payload.size() <= 123, "a close reason of 123 bytes at most");
        require(QByteArrayView(message.payload).isValidUtf8(), "a close reason is UTF-8");
        require(message.closeCode == 1005 || isValidCloseCode(message.closeCode),
                "a close code a peer may send");
        require(message.closeCode != 1005 || message.payload.isEmpty(), "no reason without a code");
        break;
    }
}

// Reads bytes written in pieces of the sizes cuts gives, in turn (whole when cuts is empty).
Reading read(const QByteArray &bytes, qint64 limit, const QByteArray &cuts)
{
    PipeDevice pipe;
    FrameReader reader;
    reader.setMaxMessageSize(limit);
    Reading reading;
    FrameReader::Message message;
    qsizetype written = 0;
    qsizetype cut = 0;
    while (written < bytes.size() && reading.failureCode == 0) {
        const qsizetype piece
                = cuts.isEmpty() ? bytes.size() : 1 + uchar(cuts.at(cut++ % cuts.size())) % 64;
        const qsizetype size = std::min(piece, bytes.size() - written);
        pipe.write(bytes.constData() + written, size);
        written += size;
        for (;;) {
            const FrameReader::Result result = reader.read(pipe, message);
            if (result == FrameReader::Result::Message) {
                checkMessage(message, limit);
                reading.messages.append(message);
                continue;
            }
            if (result == FrameReader::Result::Failed) {
                reading.failureCode = reader.failureCode();
                require(reading.failureCode == 1002 || reading.failureCode == 1007
                                || reading.failureCode == 1009,
                        "a failure code of RFC 6455");
                require(!reader.failureReason().isEmpty(), "a failure has a reason");
                require(reader.read(pipe, message) == FrameReader::Result::Failed,
                        "a failed reader stays failed");
            }
            break;
        }
    }
    reading.left = pipe.bytesAvailable();
    if (reading.failureCode == 0) {
        // What is left is the start of a frame: shorter than its header, or than the frame
        // its header declares.
        require(reading.left < 14 + std::max<qint64>(limit, 125),
                "nothing left unread beyond a frame");
    }
    return reading;
}

void fuzzFrames(const QByteArray &input)
{
    const uchar setting = input.isEmpty() ? 0 : uchar(input.at(0));
    const QByteArray bytes = input.mid(1);
    // Limits around the control frames' 125 bytes and the 2-byte lengths' 65535.
    static constexpr qint64 Limits[] = { 0, 1, 125, 126, 1000, 65535, 65536, 64 * 1024 };
    const qint64 limit = Limits[setting % std::size(Limits)];
    const Reading whole = read(bytes, limit, {});
    const Reading cut = read(bytes, limit, bytes.left(8) + char(setting));
    require(whole.failureCode == cut.failureCode, "the same end however the bytes come");
    require(whole.messages.size() == cut.messages.size(), "the same messages");
    for (qsizetype i = 0; i < whole.messages.size(); ++i) {
        require(whole.messages.at(i).kind == cut.messages.at(i).kind, "the same kinds");
        require(whole.messages.at(i).payload == cut.messages.at(i).payload, "the same payloads");
        require(whole.messages.at(i).closeCode == cut.messages.at(i).closeCode,
                "the same close codes");
    }
    if (whole.failureCode == 0)
        require(whole.left == cut.left, "the same bytes left");
}

void fuzzUpgrade(const QByteArray &request)
{
    static const QHostAddress peer(QHostAddress::LocalHost);
    const bool secure = !request.isEmpty() && (uchar(request.at(0)) & 0x80);
    const Upgrade upgrade = Upgrade::read(request, secure, peer, "qtnotif.v1");
    const int status = upgrade.status;
    require(status == 101 || status == 400 || status == 405 || status == 426 || status == 505,
            "a known status");
    require(upgrade.response.startsWith(QByteArray("HTTP/1.1 " + QByteArray::number(status) + ' ')),
            "the answer says its status");
    require(upgrade.response.endsWith("\r\n\r\n"), "the answer ends its headers");
    if (status == 101) {
        require(upgrade.error.isEmpty(), "no error for a 101");
        require(upgrade.request.url().isValid(), "a valid URL");
        require(upgrade.request.url().scheme() == (secure ? "wss" : "ws"), "the URL's scheme");
        require(upgrade.response.contains("\r\nSec-WebSocket-Accept: "), "an accept key");
        require(upgrade.subprotocol.isEmpty() || upgrade.subprotocol == "qtnotif.v1",
                "the server's subprotocol or none");
    } else {
        require(!upgrade.error.isEmpty(), "an error says why");
        require(upgrade.subprotocol.isEmpty() && upgrade.request.headers().isEmpty(),
                "nothing of a refused request");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const QByteArray input(reinterpret_cast<const char *>(data), qsizetype(size));
    if (uchar(input.at(0)) & 1)
        fuzzUpgrade(input.mid(1));
    else
        fuzzFrames(input.mid(1));
    return 0;
}
