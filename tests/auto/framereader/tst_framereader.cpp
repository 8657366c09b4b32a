// FrameReader, the server's reader of client frames (RFC 6455, section 5), fed the bytes
// RawWebSocket writes: valid frames and messages, each rule of the RFC broken, and every frame
// cut at every byte; from a device, and from the plaintext of a TLS connection (ByteQueue).
#include "bytequeue_p.h"
#include "framereader_p.h"
#include "pipedevice.h"
#include "rawwebsocket.h"

#include <QtTest/QTest>

using namespace QtNotif;

namespace {

using Raw = RawWebSocket;
using Kind = FrameReader::Kind;
using Result = FrameReader::Result;

struct Expected
{
    Kind kind;
    QByteArray payload;
    quint16 closeCode = 0;
};

// Reads every message the bytes hold, all of them there at once; source is a PipeDevice or a
// ByteQueue.
template<typename Source>
QList<FrameReader::Message> readAll(FrameReader &reader, Source &source, Result *last)
{
    QList<FrameReader::Message> messages;
    FrameReader::Message message;
    while ((*last = reader.read(source, message)) == Result::Message)
        messages.append(message);
    return messages;
}

// Fails the test where messages are not the expected ones.
void compareMessages(const QList<FrameReader::Message> &messages, const QList<Expected> &expected)
{
    QCOMPARE(messages.size(), expected.size());
    for (qsizetype i = 0; i < messages.size(); ++i) {
        QCOMPARE(messages.at(i).kind, expected.at(i).kind);
        QCOMPARE(messages.at(i).payload, expected.at(i).payload);
        QCOMPARE(messages.at(i).closeCode, expected.at(i).closeCode);
    }
}

QByteArray closeFrame(quint16 code, const QByteArray &reason = {})
{
    return Raw::frame(Raw::Close, Raw::closePayload(code, reason));
}

} // namespace

Q_DECLARE_METATYPE(Expected)

class tst_FrameReader : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void messages_data();
    void messages();
    void messagesByteByByte_data() { messages_data(); }
    void messagesByteByByte();
    void messagesFromPlaintext_data() { messages_data(); }
    void messagesFromPlaintext();
    void byteQueue();
    void failures_data();
    void failures();
    void failureIsFinal();
    void tooBigFailsBeforeThePayloadComes();
    void sizeLimit();
    void fragmentsAreGoneWithTheMessage();
};

void tst_FrameReader::messages_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QList<Expected>>("expected");

    const QByteArray x125(125, 'a'), x126(126, 'b'), x65535(65535, 'c');
    QTest::addRow("text") << Raw::text("hello") << QList<Expected>{ { Kind::Text, "hello" } };
    QTest::addRow("empty text") << Raw::text("") << QList<Expected>{ { Kind::Text, "" } };
    QTest::addRow("UTF-8 text") << Raw::text("\xe2\x82\xac \xf0\x9f\x98\x80")
                                << QList<Expected>{ { Kind::Text,
                                                      "\xe2\x82\xac \xf0\x9f\x98\x80" } };
    QTest::addRow("binary") << Raw::frame(Raw::Binary, QByteArray("\x00\xff\x01", 3))
                            << QList<Expected>{ { Kind::Binary, QByteArray("\x00\xff\x01", 3) } };
    QTest::addRow("125 bytes, short length")
            << Raw::text(x125) << QList<Expected>{ { Kind::Text, x125 } };
    QTest::addRow("126 bytes, 2-byte length")
            << Raw::text(x126) << QList<Expected>{ { Kind::Text, x126 } };
    QTest::addRow("65535 bytes, 2-byte length")
            << Raw::text(x65535) << QList<Expected>{ { Kind::Text, x65535 } };
    QTest::addRow("mask key 0") << Raw::text("k", { .maskKey = 0 })
                                << QList<Expected>{ { Kind::Text, "k" } };
    QTest::addRow("two messages") << Raw::text("one") + Raw::text("two")
                                  << QList<Expected>{ { Kind::Text, "one" },
                                                      { Kind::Text, "two" } };
    QTest::addRow("three fragments")
            << Raw::text("ab", { .fin = false })
                       + Raw::frame(Raw::Continuation, "cd", { .fin = false })
                       + Raw::frame(Raw::Continuation, "ef")
            << QList<Expected>{ { Kind::Text, "abcdef" } };
    QTest::addRow("empty fragments")
            << Raw::text("", { .fin = false })
                       + Raw::frame(Raw::Continuation, "x", { .fin = false })
                       + Raw::frame(Raw::Continuation, "")
            << QList<Expected>{ { Kind::Text, "x" } };
    QTest::addRow("binary fragments") << Raw::frame(Raw::Binary, "\x01", { .fin = false })
                                                 + Raw::frame(Raw::Continuation, "\x02")
                                      << QList<Expected>{ { Kind::Binary, "\x01\x02" } };
    // Valid by RFC 6455 (Qt 6.4's QWebSocket refuses it: it decodes each fragment alone).
    QTest::addRow("character across fragments")
            << Raw::text("\xe2\x82", { .fin = false }) + Raw::frame(Raw::Continuation, "\xac")
            << QList<Expected>{ { Kind::Text, "\xe2\x82\xac" } };
    QTest::addRow("ping between fragments")
            << Raw::text("a", { .fin = false }) + Raw::frame(Raw::Ping, "p")
                       + Raw::frame(Raw::Continuation, "b")
            << QList<Expected>{ { Kind::Ping, "p" }, { Kind::Text, "ab" } };
    QTest::addRow("ping") << Raw::frame(Raw::Ping, "are you there")
                          << QList<Expected>{ { Kind::Ping, "are you there" } };
    QTest::addRow("ping of 125 bytes")
            << Raw::frame(Raw::Ping, x125) << QList<Expected>{ { Kind::Ping, x125 } };
    QTest::addRow("empty pong") << Raw::frame(Raw::Pong, {})
                                << QList<Expected>{ { Kind::Pong, "" } };
    QTest::addRow("close without a code")
            << Raw::frame(Raw::Close, {}) << QList<Expected>{ { Kind::Close, "", 1005 } };
    QTest::addRow("close 1000 with a reason")
            << closeFrame(1000, "bye \xe2\x82\xac")
            << QList<Expected>{ { Kind::Close, "bye \xe2\x82\xac", 1000 } };
    for (quint16 code : { 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999 }) {
        QTest::addRow("close %d", code)
                << closeFrame(code) << QList<Expected>{ { Kind::Close, "", code } };
    }
}

void tst_FrameReader::messages()
{
    QFETCH(QByteArray, bytes);
    QFETCH(QList<Expected>, expected);
    PipeDevice pipe;
    pipe.write(bytes);
    FrameReader reader;
    Result last;
    const QList<FrameReader::Message> messages = readAll(reader, pipe, &last);
    QCOMPARE(last, Result::NeedMore);
    compareMessages(messages, expected);
    if (QTest::currentTestFailed())
        return;
    QCOMPARE(pipe.bytesAvailable(), 0);
    QVERIFY(!reader.inMessage());
}

void tst_FrameReader::messagesByteByByte()
{
    // The network may cut anywhere: one byte at a time, each message comes out once its
    // last byte is in, and not before.
    QFETCH(QByteArray, bytes);
    QFETCH(QList<Expected>, expected);
    PipeDevice pipe;
    FrameReader reader;
    QList<FrameReader::Message> messages;
    for (char byte : std::as_const(bytes)) {
        pipe.write(&byte, 1);
        Result last;
        messages += readAll(reader, pipe, &last);
        QCOMPARE(last, Result::NeedMore);
    }
    compareMessages(messages, expected);
    if (QTest::currentTestFailed())
        return;
    QCOMPARE(pipe.bytesAvailable(), 0);
}

void tst_FrameReader::messagesFromPlaintext()
{
    // The same from the plaintext of a TLS connection (a ByteQueue), all at once and one byte
    // at a time; the queue holds nothing once read.
    QFETCH(QByteArray, bytes);
    QFETCH(QList<Expected>, expected);
    for (const qsizetype step : { std::max<qsizetype>(bytes.size(), 1), qsizetype(1) }) {
        ByteQueue queue;
        FrameReader reader;
        QList<FrameReader::Message> messages;
        for (qsizetype at = 0; at < bytes.size(); at += step) {
            queue.append(bytes.constData() + at, std::min(step, bytes.size() - at));
            Result last;
            messages += readAll(reader, queue, &last);
            QCOMPARE(last, Result::NeedMore);
        }
        compareMessages(messages, expected);
        if (QTest::currentTestFailed())
            return;
        QVERIFY(queue.isEmpty());
    }
}

void tst_FrameReader::byteQueue()
{
    ByteQueue queue;
    char bytes[4] = {};
    QCOMPARE(queue.peek(bytes, 4), 0);
    QCOMPARE(queue.readAll(), QByteArray());
    queue.append("abcdef", 6);
    QCOMPARE(queue.peek(bytes, 4), 4);
    QCOMPARE(QByteArray(bytes, 4), QByteArray("abcd"));
    QCOMPARE(queue.skip(2), 2);
    QCOMPARE(queue.read(2), QByteArray("cd"));
    // Appended after what is left, the bytes consumed gone.
    queue.append("gh", 2);
    QCOMPARE(queue.bytesAvailable(), 4);
    QCOMPARE(queue.skip(10), 4);
    QVERIFY(queue.isEmpty());
    queue.append("ij", 2);
    QCOMPARE(queue.readAll(), QByteArray("ij"));
    QVERIFY(queue.isEmpty());
}

void tst_FrameReader::failures_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<int>("code");

    const QByteArray text = Raw::text("{}");
    // RFC 6455, 5.2 and 5.5: frames a client must not send.
    QTest::addRow("RSV1") << Raw::text("a", { .rsv = 4 }) << 1002;
    QTest::addRow("RSV2") << Raw::text("a", { .rsv = 2 }) << 1002;
    QTest::addRow("RSV3") << Raw::text("a", { .rsv = 1 }) << 1002;
    for (quint8 opcode : { 3, 4, 5, 6, 7, 11, 12, 13, 14, 15 })
        QTest::addRow("opcode %d", opcode) << Raw::frame(opcode, "a") << 1002;
    QTest::addRow("unmasked (5.1)") << Raw::text("a", { .masked = false }) << 1002;
    QTest::addRow("length 5 in two bytes") << Raw::text("hello", { .lengthBytes = 2 }) << 1002;
    QTest::addRow("length 200 in eight bytes")
            << Raw::text(QByteArray(200, ' '), { .lengthBytes = 8 }) << 1002;
    QTest::addRow("length 65535 in eight bytes")
            << Raw::text(QByteArray(65535, ' '), { .lengthBytes = 8 }) << 1002;
    QTest::addRow("length with its top bit set")
            << Raw::text({}, { .declaredLength = quint64(1) << 63, .lengthBytes = 8 }) << 1002;
    QTest::addRow("ping of 126 bytes") << Raw::frame(Raw::Ping, QByteArray(126, 'p')) << 1002;
    QTest::addRow("close of 126 bytes")
            << Raw::frame(Raw::Close, Raw::closePayload(1000, QByteArray(124, 'r'))) << 1002;
    QTest::addRow("fragmented ping") << Raw::frame(Raw::Ping, "p", { .fin = false }) << 1002;
    QTest::addRow("fragmented close")
            << Raw::frame(Raw::Close, Raw::closePayload(1000), { .fin = false }) << 1002;
    QTest::addRow("continuation first") << Raw::frame(Raw::Continuation, "a") << 1002;
    QTest::addRow("continuation after a whole message")
            << text + Raw::frame(Raw::Continuation, "a") << 1002;
    QTest::addRow("text inside a message")
            << Raw::text("a", { .fin = false }) + Raw::text("b") << 1002;
    QTest::addRow("binary inside a message")
            << Raw::text("a", { .fin = false }) + Raw::frame(Raw::Binary, "b") << 1002;
    // 7.4: codes a peer may not send.
    QTest::addRow("close of one byte") << Raw::frame(Raw::Close, "\x03") << 1002;
    for (quint16 code : { 0, 999, 1004, 1005, 1006, 1012, 1015, 2000, 2999, 5000, 65535 })
        QTest::addRow("close code %d", code) << closeFrame(code) << 1002;
    // 8.1: text is UTF-8.
    QTest::addRow("byte 0xff") << Raw::text("{\"op\":\"\xff\"}") << 1007;
    QTest::addRow("overlong") << Raw::text("\xc0\xaf") << 1007;
    QTest::addRow("surrogate") << Raw::text("\xed\xa0\x80") << 1007;
    QTest::addRow("beyond U+10FFFF") << Raw::text("\xf4\x90\x80\x80") << 1007;
    QTest::addRow("truncated at the end") << Raw::text("ok\xe2\x82") << 1007;
    QTest::addRow("invalid in the second fragment")
            << Raw::text("{", { .fin = false }) + Raw::frame(Raw::Continuation, "\xff}") << 1007;
    QTest::addRow("ends inside a character")
            << Raw::text("{\"\xe2", { .fin = false }) + Raw::frame(Raw::Continuation, "\x82")
            << 1007;
    QTest::addRow("close reason not UTF-8") << closeFrame(1000, "\xff") << 1007;
    // The size limit (64 KiB by default).
    QTest::addRow("text of 64 KiB + 1") << Raw::text(QByteArray(64 * 1024 + 1, ' ')) << 1009;
    QTest::addRow("binary of 64 KiB + 1")
            << Raw::frame(Raw::Binary, QByteArray(64 * 1024 + 1, ' ')) << 1009;
    const QByteArray fragment(16 * 1024, ' ');
    QTest::addRow("fragments over 64 KiB")
            << Raw::text(fragment, { .fin = false })
                       + Raw::frame(Raw::Continuation, fragment, { .fin = false })
                       + Raw::frame(Raw::Continuation, fragment, { .fin = false })
                       + Raw::frame(Raw::Continuation, fragment, { .fin = false })
                       + Raw::frame(Raw::Continuation, "x")
            << 1009;
}

void tst_FrameReader::failures()
{
    QFETCH(QByteArray, bytes);
    QFETCH(int, code);
    PipeDevice pipe;
    pipe.write(bytes);
    FrameReader reader;
    Result last;
    const QList<FrameReader::Message> messages = readAll(reader, pipe, &last);
    QCOMPARE(last, Result::Failed);
    QCOMPARE(reader.failureCode(), code);
    QVERIFY(!reader.failureReason().isEmpty());
    QVERIFY(!reader.inMessage());
    // Whatever came before the bad frame was read; nothing after it.
    for (const FrameReader::Message &message : messages)
        QVERIFY(message.kind == Kind::Text);
}

void tst_FrameReader::failureIsFinal()
{
    PipeDevice pipe;
    pipe.write(Raw::text("a", { .rsv = 4 }));
    FrameReader reader;
    FrameReader::Message message;
    QCOMPARE(reader.read(pipe, message), Result::Failed);
    pipe.write(Raw::text("valid"));
    QCOMPARE(reader.read(pipe, message), Result::Failed);
    QCOMPARE(reader.failureCode(), 1002);
}

void tst_FrameReader::tooBigFailsBeforeThePayloadComes()
{
    // The header alone tells: the reader does not wait (and buffer) for a payload it refuses.
    for (quint64 declared : { quint64(64 * 1024 + 1), quint64(1) << 62 }) {
        PipeDevice pipe;
        pipe.write(Raw::text({}, { .declaredLength = declared }));
        FrameReader reader;
        FrameReader::Message message;
        QCOMPARE(reader.read(pipe, message), Result::Failed);
        QCOMPARE(reader.failureCode(), 1009);
    }
}

void tst_FrameReader::sizeLimit()
{
    FrameReader reader;
    QCOMPARE(reader.maxMessageSize(), 64 * 1024);
    reader.setMaxMessageSize(100 * 1024);
    PipeDevice pipe;
    const QByteArray big(100 * 1024, 'b');
    pipe.write(Raw::text(big));
    FrameReader::Message message;
    QCOMPARE(reader.read(pipe, message), Result::Message);
    QCOMPARE(message.payload, big);
    // Fragments count together: at the limit, then one byte beyond.
    pipe.write(Raw::text(QByteArray(50 * 1024, 'a'), { .fin = false }));
    pipe.write(Raw::frame(Raw::Continuation, QByteArray(50 * 1024, 'a')));
    QCOMPARE(reader.read(pipe, message), Result::Message);
    QCOMPARE(message.payload.size(), 100 * 1024);
    pipe.write(Raw::text(QByteArray(50 * 1024, 'a'), { .fin = false }));
    pipe.write(Raw::frame(Raw::Continuation, QByteArray(50 * 1024 + 1, 'a')));
    QCOMPARE(reader.read(pipe, message), Result::Failed);
    QCOMPARE(reader.failureCode(), 1009);
}

void tst_FrameReader::fragmentsAreGoneWithTheMessage()
{
    // An idle connection's reader holds no bytes: the fragments go once the message is read.
    PipeDevice pipe;
    FrameReader reader;
    FrameReader::Message message;
    pipe.write(Raw::text(QByteArray(1000, 'a'), { .fin = false }));
    QCOMPARE(reader.read(pipe, message), Result::NeedMore);
    QVERIFY(reader.inMessage());
    pipe.write(Raw::frame(Raw::Continuation, "z"));
    QCOMPARE(reader.read(pipe, message), Result::Message);
    QCOMPARE(message.payload.size(), 1001);
    QVERIFY(!reader.inMessage());
}

QTEST_APPLESS_MAIN(tst_FrameReader)

#include "tst_framereader.moc"
