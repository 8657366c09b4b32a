// Malformed input of every kind, over real sockets on loopback: each gets its error frame or its
// close code, the server survives, and a well-behaved client on the same server receives every
// notification, in order, throughout (docs/protocol.md, "Malformed input").
#include "rawwebsocket.h"
#include "server_p.h"
#include "testmain.h"
#include "testpeer.h"

#include <QtNotif/notifier.h>
#include <QtNotif/server.h>

#include <QtCore/QDir>
#include <QtCore/QRegularExpression>
#include <QtCore/QScopeGuard>
#include <QtCore/QTimer>
#include <QtTest/QSignalSpy>
#include <QtTest/QTest>

#include <memory>
#include <vector>

#ifdef Q_OS_UNIX
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

using namespace QtNotif;
using namespace std::chrono_literals;

namespace {

using Raw = RawWebSocket;

// A frame answered with an error frame; the connection stays open.
struct ErrorCase
{
    const char *name;
    QByteArray bytes; // what the client writes: one or more whole frames
    QString code;
    qint64 id; // of the error frame; -1 when it has none
};

// Input that looks odd but is valid: answered like any other frame.
struct AnsweredCase
{
    const char *name;
    QByteArray bytes;
    QString op; // "ack" or "reply"
    qint64 id;
    int listens; // listens the frame adds
};

// Input the WebSocket layer refuses: the server closes the connection with a code.
struct ClosingCase
{
    const char *name;
    QByteArray bytes;
    quint16 closeCode;
};

// A listen of key (JSON text) with the given id (JSON text).
QByteArray listenText(const QByteArray &id, const QByteArray &key)
{
    return R"({"op":"listen","id":)" + id + R"(,"notifier":"chat","key":)" + key + '}';
}

// An unlisten registers nothing: odd ids and keys are tried with it.
QByteArray unlistenText(const QByteArray &id, const QByteArray &key = R"("k")")
{
    return R"({"op":"unlisten","id":)" + id + R"(,"notifier":"chat","key":)" + key + '}';
}

QByteArray requestText(const QByteArray &id, const QByteArray &method)
{
    return R"({"op":"request","id":)" + id + R"(,"method":)" + method + R"(,"payload":1})";
}

QList<ErrorCase> errorCases()
{
    const QByteArray longName(60000, 'x');
    const QByteArray deepArrays = QByteArray("[").repeated(10000) + QByteArray("]").repeated(10000);
    const QByteArray deepObjects
            = QByteArray(R"({"a":)").repeated(10000) + '1' + QByteArray("}").repeated(10000);
    return {
        // Not JSON.
        { "not JSON", Raw::text("hello"), "invalid_json", -1 },
        { "empty text frame", Raw::text(""), "invalid_json", -1 },
        { "a NUL byte", Raw::text(QByteArray(1, '\0')), "invalid_json", -1 },
        { "whitespace only", Raw::text(" \t\r\n "), "invalid_json", -1 },
        { "truncated object", Raw::text(R"({"op":"listen","id":1)"), "invalid_json", -1 },
        { "single quotes", Raw::text("{'op':'listen','id':1}"), "invalid_json", -1 },
        { "trailing comma", Raw::text(R"({"op":"listen",})"), "invalid_json", -1 },
        { "two objects", Raw::text("{}{}"), "invalid_json", -1 },
        { "garbage after the object", Raw::text(unlistenText("1") + 'x'), "invalid_json", -1 },
        { "NUL byte after the object", Raw::text(unlistenText("1") + '\0'), "invalid_json", -1 },
        { "NaN", Raw::text(unlistenText("NaN")), "invalid_json", -1 },
        { "hexadecimal number", Raw::text(unlistenText("0x10")), "invalid_json", -1 },
        { "leading zero", Raw::text(unlistenText("01")), "invalid_json", -1 },
        { "number 1e400", Raw::text(unlistenText("1", "1e400")), "invalid_json", -1 },
        { "number -1e400", Raw::text(unlistenText("1", "-1e400")), "invalid_json", -1 },
        { "number 1e-400", Raw::text(unlistenText("1", "1e-400")), "invalid_json", -1 },
        { "id 1e400", Raw::text(unlistenText("1e400")), "invalid_json", -1 },
        { "10000 nested arrays", Raw::text(deepArrays), "invalid_json", -1 },
        { "10000 nested objects", Raw::text(deepObjects), "invalid_json", -1 },
        { "1025 nested arrays in a payload",
          Raw::text(R"({"op":"request","id":1,"method":"echo","payload":)"
                    + QByteArray("[").repeated(1025) + QByteArray("]").repeated(1025) + '}'),
          "invalid_json", -1 },
        { "top-level string", Raw::text(R"("listen")"), "invalid_json", -1 },
        { "top-level number", Raw::text("42"), "invalid_json", -1 },
        { "top-level null", Raw::text("null"), "invalid_json", -1 },
        { "top-level true", Raw::text("true"), "invalid_json", -1 },
        // JSON, not an object.
        { "top-level array", Raw::text(R"([{"op":"listen"}])"), "not_an_object", -1 },
        { "empty array", Raw::text("[]"), "not_an_object", -1 },
        // Binary messages.
        { "binary frame", Raw::frame(Raw::Binary, unlistenText("1")), "binary_frame", -1 },
        { "empty binary frame", Raw::frame(Raw::Binary, {}), "binary_frame", -1 },
        { "fragmented binary message",
          Raw::frame(Raw::Binary, "\x01\x02", { .fin = false })
                  + Raw::frame(Raw::Continuation, "\x03"),
          "binary_frame", -1 },
        // op.
        { "empty object", Raw::text("{}"), "invalid_field", -1 },
        { "op missing", Raw::text(R"({"id":1})"), "invalid_field", 1 },
        { "op a number", Raw::text(R"({"op":1,"id":2})"), "invalid_field", 2 },
        { "op null", Raw::text(R"({"op":null,"id":3})"), "invalid_field", 3 },
        { "op an array", Raw::text(R"({"op":["listen"],"id":4})"), "invalid_field", 4 },
        { "op unknown", Raw::text(R"({"op":"subscribe","id":5})"), "unknown_op", 5 },
        { "op unknown, id unreadable", Raw::text(R"({"op":"subscribe","id":"5"})"), "unknown_op",
          -1 },
        { "op of a server frame", Raw::text(R"({"op":"welcome","id":6})"), "unknown_op", 6 },
        { "op notif", Raw::text(R"({"op":"notif","id":7,"notifier":"chat","key":"k"})"),
          "unknown_op", 7 },
        { "op in capitals", Raw::text(R"({"op":"LISTEN","id":8,"notifier":"chat","key":"k"})"),
          "unknown_op", 8 },
        { "op with an escaped NUL",
          Raw::text(R"({"op":"listen\u0000","id":9,"notifier":"chat","key":"k"})"), "unknown_op",
          9 },
        { "op empty", Raw::text(R"({"op":"","id":10})"), "unknown_op", 10 },
        { "op of 60000 bytes", Raw::text(R"({"op":")" + longName + R"(","id":11})"), "unknown_op",
          11 },
        // id.
        { "id missing", Raw::text(R"({"op":"unlisten","notifier":"chat","key":"k"})"),
          "invalid_field", -1 },
        { "id a string", Raw::text(unlistenText(R"("1")")), "invalid_field", -1 },
        { "id a fraction", Raw::text(unlistenText("1.5")), "invalid_field", -1 },
        { "id negative", Raw::text(unlistenText("-1")), "invalid_field", -1 },
        { "id 2^53", Raw::text(unlistenText("9007199254740992")), "invalid_field", -1 },
        { "id 2^63", Raw::text(unlistenText("9223372036854775808")), "invalid_field", -1 },
        { "id -2^63-1", Raw::text(unlistenText("-9223372036854775809")), "invalid_field", -1 },
        { "id of 300 digits", Raw::text(unlistenText('1' + QByteArray(299, '0'))), "invalid_field",
          -1 },
        { "id true", Raw::text(unlistenText("true")), "invalid_field", -1 },
        { "id null", Raw::text(unlistenText("null")), "invalid_field", -1 },
        { "id an object", Raw::text(unlistenText(R"({"id":1})")), "invalid_field", -1 },
        { "id an array", Raw::text(unlistenText("[1]")), "invalid_field", -1 },
        // notifier.
        { "notifier missing", Raw::text(R"({"op":"listen","id":20,"key":"k"})"), "invalid_field",
          20 },
        { "notifier a number", Raw::text(R"({"op":"listen","id":21,"notifier":1,"key":"k"})"),
          "invalid_field", 21 },
        { "notifier null", Raw::text(R"({"op":"listen","id":22,"notifier":null,"key":"k"})"),
          "invalid_field", 22 },
        { "notifier an object",
          Raw::text(R"({"op":"unlisten","id":23,"notifier":{"name":"chat"},"key":"k"})"),
          "invalid_field", 23 },
        { "notifier an array",
          Raw::text(R"({"op":"listen","id":24,"notifier":["chat"],"key":"k"})"), "invalid_field",
          24 },
        { "notifier unknown", Raw::text(R"({"op":"listen","id":25,"notifier":"nope","key":"k"})"),
          "unknown_notifier", 25 },
        { "notifier unknown, unlisten",
          Raw::text(R"({"op":"unlisten","id":26,"notifier":"nope","key":"k"})"), "unknown_notifier",
          26 },
        { "notifier empty", Raw::text(R"({"op":"listen","id":27,"notifier":"","key":"k"})"),
          "unknown_notifier", 27 },
        { "notifier in capitals",
          Raw::text(R"({"op":"listen","id":28,"notifier":"CHAT","key":"k"})"), "unknown_notifier",
          28 },
        { "notifier with an escaped NUL",
          Raw::text(R"({"op":"listen","id":29,"notifier":"chat\u0000","key":"k"})"),
          "unknown_notifier", 29 },
        { "notifier with a raw NUL",
          Raw::text(QByteArray(R"({"op":"listen","id":30,"notifier":"chat)") + '\0'
                    + R"(","key":"k"})"),
          "unknown_notifier", 30 },
        { "notifier a lone surrogate",
          Raw::text(R"({"op":"listen","id":31,"notifier":"\ud800","key":"k"})"), "unknown_notifier",
          31 },
        { "notifier of 60000 bytes",
          Raw::text(R"({"op":"listen","id":32,"notifier":")" + longName + R"(","key":"k"})"),
          "unknown_notifier", 32 },
        // key: the notifier "chat" has string keys.
        { "key missing", Raw::text(R"({"op":"listen","id":40,"notifier":"chat"})"), "invalid_field",
          40 },
        { "key null", Raw::text(listenText("41", "null")), "invalid_field", 41 },
        { "key null, unlisten", Raw::text(unlistenText("42", "null")), "invalid_field", 42 },
        { "key an object", Raw::text(listenText("43", R"({"room":"k"})")), "invalid_key", 43 },
        { "key an array", Raw::text(listenText("44", R"(["k"])")), "invalid_key", 44 },
        { "key a number", Raw::text(listenText("45", "7")), "invalid_key", 45 },
        { "key a huge number", Raw::text(listenText("46", '9' + QByteArray(300, '9'))),
          "invalid_key", 46 },
        { "key true", Raw::text(listenText("47", "true")), "invalid_key", 47 },
        { "key one byte too long", Raw::text(listenText("48", '"' + QByteArray(1023, 'k') + '"')),
          "invalid_key", 48 },
        // 342 characters, 1028 bytes of UTF-8 with the quotes: the limit counts bytes.
        { "key of three-byte characters",
          Raw::text(listenText("49", '"' + QByteArray("\xe2\x82\xac").repeated(342) + '"')),
          "invalid_key", 49 },
        { "key of 60000 bytes", Raw::text(listenText("50", '"' + longName + '"')), "invalid_key",
          50 },
        // method.
        { "method missing", Raw::text(R"({"op":"request","id":60,"payload":1})"), "invalid_field",
          60 },
        { "method a number", Raw::text(requestText("61", "1")), "invalid_field", 61 },
        { "method null", Raw::text(requestText("62", "null")), "invalid_field", 62 },
        { "method an object", Raw::text(requestText("63", R"({"name":"echo"})")), "invalid_field",
          63 },
        { "method an array", Raw::text(requestText("64", R"(["echo"])")), "invalid_field", 64 },
        { "method unknown", Raw::text(requestText("65", R"("nope")")), "unknown_method", 65 },
        { "method in capitals", Raw::text(requestText("66", R"("ECHO")")), "unknown_method", 66 },
        { "method with an escaped NUL", Raw::text(requestText("67", R"("echo\u0000")")),
          "unknown_method", 67 },
        { "method of 60000 bytes", Raw::text(requestText("68", '"' + longName + '"')),
          "unknown_method", 68 },
    };
}

QList<AnsweredCase> answeredCases()
{
    return {
        { "id 0", Raw::text(unlistenText("0")), "ack", 0, 0 },
        { "id -0", Raw::text(unlistenText("-0")), "ack", 0, 0 },
        { "id 1.0", Raw::text(unlistenText("1.0")), "ack", 1, 0 },
        { "id 1e2", Raw::text(unlistenText("1e2")), "ack", 100, 0 },
        { "id 2^53-1", Raw::text(unlistenText("9007199254740991")), "ack", 9007199254740991, 0 },
        { "id twice: the last one counts",
          Raw::text(R"({"op":"unlisten","id":1,"id":2,"notifier":"chat","key":"k"})"), "ack", 2,
          0 },
        { "op twice: the last one counts",
          Raw::text(R"({"op":"nope","id":3,"notifier":"chat","key":"k","op":"unlisten"})"), "ack",
          3, 0 },
        { "unknown members",
          Raw::text(R"({"op":"unlisten","id":4,"notifier":"chat","key":"k",)"
                    R"("extra":{"deep":[1,2,3]}})"),
          "ack", 4, 0 },
        { "members in any order",
          Raw::text(R"({"key":"k","notifier":"chat","id":5,"op":"unlisten"})"), "ack", 5, 0 },
        { "whitespace around", Raw::text(" \r\n\t" + unlistenText("6") + "\n "), "ack", 6, 0 },
        { "UTF-8 byte order mark", Raw::text("\xef\xbb\xbf" + unlistenText("7")), "ack", 7, 0 },
        // Qt's parser is lenient where strict JSON is not.
        { "raw control characters in a string", Raw::text(unlistenText("8", "\"a\tb\x01\"")), "ack",
          8, 0 },
        { "unknown escape in a string", Raw::text(unlistenText("26", R"("\q")")), "ack", 26, 0 },
        { "number with a leading dot", Raw::text(unlistenText("9", ".5")), "ack", 9, 0 },
        { "escaped NUL in a key", Raw::text(listenText("10", R"("a\u0000b")")), "ack", 10, 1 },
        { "lone surrogate in a key", Raw::text(listenText("11", R"("\udc00")")), "ack", 11, 1 },
        { "key at the size limit", Raw::text(listenText("12", '"' + QByteArray(1022, 'k') + '"')),
          "ack", 12, 1 },
        { "payload missing", Raw::text(R"({"op":"request","id":13,"method":"echo"})"), "reply", 13,
          0 },
        { "payload of 1023 nested arrays",
          Raw::text(R"({"op":"request","id":14,"method":"echo","payload":)"
                    + QByteArray("[").repeated(1023) + QByteArray("]").repeated(1023) + '}'),
          "reply", 14, 0 },
        // Frames.
        { "mask key 0", Raw::text(unlistenText("21"), { .maskKey = 0 }), "ack", 21, 0 },
        { "message in three fragments",
          Raw::text(R"({"op":"unlisten",)", { .fin = false })
                  + Raw::frame(Raw::Continuation, R"("id":22,"notifier")", { .fin = false })
                  + Raw::frame(Raw::Continuation, R"(:"chat","key":"k"})"),
          "ack", 22, 0 },
        { "empty fragments",
          Raw::text("", { .fin = false })
                  + Raw::frame(Raw::Continuation, unlistenText("23"), { .fin = false })
                  + Raw::frame(Raw::Continuation, ""),
          "ack", 23, 0 },
        // A text message is checked whole (Qt's QWebSocket refused this one: it decoded each
        // fragment alone).
        { "character split across fragments",
          Raw::text("{\"op\":\"unlisten\",\"id\":25,\"notifier\":\"chat\",\"key\":\"\xe2\x82",
                    { .fin = false })
                  + Raw::frame(Raw::Continuation, "\xac\"}"),
          "ack", 25, 0 },
        { "ping between fragments",
          Raw::text(R"({"op":"unlisten","id":24,)", { .fin = false })
                  + Raw::frame(Raw::Ping, "between")
                  + Raw::frame(Raw::Continuation, R"("notifier":"chat","key":"k"})"),
          "ack", 24, 0 },
    };
}

QList<ClosingCase> closingCases()
{
    constexpr quint64 limit = 64 * 1024;
    const QByteArray fragment(16000, ' ');
    return {
        // Text that is not UTF-8 (RFC 6455, section 8.1).
        { "invalid byte 0xff", Raw::text("{\"op\":\"\xff\"}"), 1007 },
        { "overlong encoding", Raw::text(unlistenText("1", "\"\xc0\xaf\"")), 1007 },
        { "encoded surrogate", Raw::text(unlistenText("1", "\"\xed\xa0\x80\"")), 1007 },
        { "beyond U+10FFFF", Raw::text(unlistenText("1", "\"\xf4\x90\x80\x80\"")), 1007 },
        { "truncated sequence at the end", Raw::text(unlistenText("1") + "\xe2\x82"), 1007 },
        { "invalid byte in the second fragment",
          Raw::text("{", { .fin = false }) + Raw::frame(Raw::Continuation, "\xff}"), 1007 },
        { "message ends inside a character",
          Raw::text("{\"\xe2", { .fin = false }) + Raw::frame(Raw::Continuation, "\x82"), 1007 },
        { "close reason not UTF-8", Raw::frame(Raw::Close, Raw::closePayload(1000, "\xff")), 1007 },
        // Too big (maxFrameSize, 64 KiB by default).
        { "text frame one byte beyond the limit",
          Raw::text(unlistenText("1") + QByteArray(limit + 1 - unlistenText("1").size(), ' ')),
          1009 },
        { "binary frame beyond the limit", Raw::frame(Raw::Binary, QByteArray(limit + 1, 'b')),
          1009 },
        { "frame declared beyond the limit, never sent",
          Raw::text({}, { .declaredLength = limit + 1 }), 1009 },
        { "frame declared 2^62 bytes, never sent",
          Raw::text({}, { .declaredLength = quint64(1) << 62 }), 1009 },
        { "message beyond the limit in fragments",
          Raw::text(fragment, { .fin = false })
                  + Raw::frame(Raw::Continuation, fragment, { .fin = false })
                  + Raw::frame(Raw::Continuation, fragment, { .fin = false })
                  + Raw::frame(Raw::Continuation, fragment, { .fin = false })
                  + Raw::frame(Raw::Continuation, fragment),
          1009 },
        // Frames RFC 6455 forbids.
        { "unmasked frame", Raw::text(unlistenText("20"), { .masked = false }), 1002 },
        { "RSV1 set", Raw::text(unlistenText("1"), { .rsv = 4 }), 1002 },
        { "RSV2 set", Raw::text(unlistenText("1"), { .rsv = 2 }), 1002 },
        { "RSV3 set", Raw::text(unlistenText("1"), { .rsv = 1 }), 1002 },
        { "reserved opcode 3", Raw::frame(3, unlistenText("1")), 1002 },
        { "reserved opcode 7", Raw::frame(7, unlistenText("1")), 1002 },
        { "reserved opcode 0xb", Raw::frame(0xb, {}), 1002 },
        { "reserved opcode 0xf", Raw::frame(0xf, {}), 1002 },
        { "continuation without a start", Raw::frame(Raw::Continuation, unlistenText("1")), 1002 },
        { "text frame inside a fragmented message",
          Raw::text("{", { .fin = false }) + Raw::text(unlistenText("1")), 1002 },
        { "ping of 126 bytes", Raw::frame(Raw::Ping, QByteArray(126, 'p')), 1002 },
        { "close of 126 bytes",
          Raw::frame(Raw::Close, Raw::closePayload(1000, QByteArray(124, 'r'))), 1002 },
        { "fragmented ping", Raw::frame(Raw::Ping, "p", { .fin = false }), 1002 },
        { "length 5 in two bytes", Raw::text("hello", { .lengthBytes = 2 }), 1002 },
        { "length 200 in eight bytes", Raw::text(QByteArray(200, ' '), { .lengthBytes = 8 }),
          1002 },
        { "length with its top bit set",
          Raw::text({}, { .declaredLength = quint64(1) << 63, .lengthBytes = 8 }), 1002 },
        { "close of one byte", Raw::frame(Raw::Close, "\x03"), 1002 },
        { "close code 999", Raw::frame(Raw::Close, Raw::closePayload(999)), 1002 },
        { "close code 1005", Raw::frame(Raw::Close, Raw::closePayload(1005)), 1002 },
        { "close code 1006", Raw::frame(Raw::Close, Raw::closePayload(1006)), 1002 },
        { "close code 2000", Raw::frame(Raw::Close, Raw::closePayload(2000)), 1002 },
        { "close code 1012", Raw::frame(Raw::Close, Raw::closePayload(1012)), 1002 },
        { "close code 5000", Raw::frame(Raw::Close, Raw::closePayload(5000)), 1002 },
        // A valid close is answered in kind.
        { "close 1000", Raw::frame(Raw::Close, Raw::closePayload(1000, "bye")), 1000 },
        { "close 3000", Raw::frame(Raw::Close, Raw::closePayload(3000)), 3000 },
        { "close 4321", Raw::frame(Raw::Close, Raw::closePayload(4321)), 4321 },
        { "close without a code", Raw::frame(Raw::Close, {}), 1000 },
    };
}

// Open file descriptors of this process: the test's sockets and the server's. Always 0 where
// there is no /proc (the check is then skipped).
int openFileDescriptors()
{
#ifdef Q_OS_LINUX
    return int(QDir(QStringLiteral("/proc/self/fd"))
                       .entryList(QDir::NoDotAndDotDot | QDir::System | QDir::AllEntries)
                       .size());
#else
    return 0;
#endif
}

} // namespace

class tst_BadInput : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void errorFrames_data();
    void errorFrames();
    void answeredFrames_data();
    void answeredFrames();
    void closingFrames_data();
    void closingFrames();
    void frameSizeLimit_data();
    void frameSizeLimit();
    void unfinishedFrameTimesOut();
    void unfinishedMessageIsDroppedWithItsConnection();
    void framesBeforeTheWelcome_data();
    void framesBeforeTheWelcome();
    void refusedFrameWithTheHandshake_data();
    void refusedFrameWithTheHandshake();
    void handshakeInProgressWhenTheServerCloses();
    void garbageInsteadOfAHandshake_data();
    void garbageInsteadOfAHandshake();
    void fileDescriptorsRunOut();
    void badFrameFlood();
    void requestFlood();
    void listenFlood();
    void pingFlood();
    void pongFlood();
    void pingFloodFromAClientThatDoesNotRead_data();
    void pingFloodFromAClientThatDoesNotRead();
    void everyCaseOnOneServer();

private:
    // Opens a raw connection and checks its welcome.
    std::unique_ptr<RawWebSocket> openRaw(const QByteArray &extra = {});
    void runErrorCase(const ErrorCase &c);
    void runAnsweredCase(const AnsweredCase &c);
    void runClosingCase(const ClosingCase &c);
    // Checks that the watcher received every notification so far, in order, and is connected.
    void verifyWatcher();
    // Checks that the server holds nothing but the watcher's connection and listen.
    void verifyOnlyTheWatcherIsLeft();

    std::unique_ptr<Server> server;
    SimpleNotifier<QString, int> *chat = nullptr;
    std::unique_ptr<TestPeer> watcher;
    QTimer ticker;
    int notified = 0;
    int baselineFds = 0;
};

void tst_BadInput::init()
{
    server = std::make_unique<Server>();
    chat = new SimpleNotifier<QString, int>(server.get(), "chat");
    server->setHandler("echo", [](const Request &request) { request.reply(request.payload()); });
    QVERIFY(server->listen(QHostAddress::LocalHost, 0));

    // The well-behaved client: it listens to one key, notified every few milliseconds for as
    // long as the test runs.
    watcher = std::make_unique<TestPeer>();
    QVERIFY(watcher->open(server->serverUrl()));
    QVERIFY(watcher->listenAndWait("chat", "watched"));
    notified = 0;
    ticker.setInterval(5ms);
    ticker.callOnTimeout(chat, [this] { chat->notify("watched", ++notified); });
    ticker.start();
    baselineFds = openFileDescriptors();
}

void tst_BadInput::cleanup()
{
    // A few notifications at least, however short the case was.
    QTRY_VERIFY(notified >= 3);
    ticker.stop();
    ticker.disconnect();
    if (watcher && !QTest::currentTestFailed()) {
        verifyWatcher();
        verifyOnlyTheWatcherIsLeft();
    }
    watcher.reset();
    server.reset();
}

void tst_BadInput::verifyWatcher()
{
    const int sent = notified;
    QVERIFY(sent > 0);
    QVERIFY(QTest::qWaitFor([&] { return watcher->framesOf("notif").size() >= sent; }, 5000));
    const QList<QJsonObject> notifs = watcher->framesOf("notif");
    for (qsizetype i = 0; i < notifs.size(); ++i) {
        QCOMPARE(notifs.at(i).value("key").toString(), QString("watched"));
        QCOMPARE(notifs.at(i).value("data").toInt(), int(i + 1));
        QCOMPARE(notifs.at(i).value("seq").toInteger(), i + 1);
    }
    QVERIFY(!watcher->disconnected);
    QVERIFY(watcher->framesOf("error").isEmpty());
}

void tst_BadInput::verifyOnlyTheWatcherIsLeft()
{
    // Sockets being closed are the server's children until they are gone; and every socket of
    // the bad clients, theirs and the server's, is closed. (QTest::qWaitFor polls more often
    // than QTRY_*: a case takes less time.)
    (void)QTest::qWaitFor(
            [this] {
                return server->connectionCount() == 1
                       && server->findChildren<QTcpSocket *>().isEmpty()
                       && openFileDescriptors() == baselineFds;
            },
            10000);
    QCOMPARE(server->connectionCount(), 1);
    QCOMPARE(server->listenCount(), 1);
    QCOMPARE(server->keyCount(), 1);
    QCOMPARE(server->findChildren<QTcpSocket *>().size(), 0);
    QCOMPARE(openFileDescriptors(), baselineFds);
}

std::unique_ptr<RawWebSocket> tst_BadInput::openRaw(const QByteArray &extra)
{
    auto raw = std::make_unique<RawWebSocket>();
    if (!raw->open(server->serverPort(), extra)) {
        QTest::qFail("the raw client was not upgraded", __FILE__, __LINE__);
        return raw;
    }
    if (!raw->waitForMessages("welcome", 1))
        QTest::qFail("the raw client got no welcome", __FILE__, __LINE__);
    else if (raw->messages.first().value("op").toString() != QLatin1String("welcome"))
        QTest::qFail("the welcome was not the first frame", __FILE__, __LINE__);
    return raw;
}

void tst_BadInput::runErrorCase(const ErrorCase &c)
{
    auto raw = openRaw();
    if (QTest::currentTestFailed())
        return;
    raw->write(c.bytes);
    QVERIFY(raw->waitForMessages("error", 1));
    const QJsonObject error = raw->messagesOf("error").first();
    QCOMPARE(error.value("code").toString(), c.code);
    QVERIFY(!error.value("message").toString().isEmpty());
    if (c.id < 0)
        QVERIFY(!error.contains("id"));
    else
        QCOMPARE(error.value("id").toInteger(-1), c.id);
    QCOMPARE(server->listenCount(), 1);
    QCOMPARE(server->keyCount(), 1);
    // An error frame never ends the connection: the next frame is answered, and nothing else
    // came in between.
    raw->sendText(unlistenText("99"));
    QVERIFY(raw->waitForMessages("ack", 1));
    QCOMPARE(raw->messages.size(), 3);
    QCOMPARE(raw->messages.at(2).value("id").toInteger(), 99);
    QVERIFY(!raw->disconnected);
    QCOMPARE(server->connectionCount(), 2);
    QCOMPARE(raw->invalidUtf8Messages, 0);
    QVERIFY(!raw->anyMaskedFrame());
}

void tst_BadInput::runAnsweredCase(const AnsweredCase &c)
{
    auto raw = openRaw();
    if (QTest::currentTestFailed())
        return;
    raw->write(c.bytes);
    QVERIFY(raw->waitForMessages(c.op.toLatin1().constData(), 1));
    QCOMPARE(raw->messages.size(), 2);
    QCOMPARE(raw->messages.at(1).value("id").toInteger(-1), c.id);
    QCOMPARE(server->listenCount(), 1 + c.listens);
    QCOMPARE(server->keyCount(), 1 + c.listens);
    QVERIFY(!raw->disconnected);
    QCOMPARE(raw->invalidUtf8Messages, 0);
    QVERIFY(!raw->anyMaskedFrame());
}

void tst_BadInput::runClosingCase(const ClosingCase &c)
{
    auto raw = openRaw();
    if (QTest::currentTestFailed())
        return;
    raw->write(c.bytes);
    QVERIFY(raw->waitForClose());
    QCOMPARE(*raw->closeCode, c.closeCode);
    QCOMPARE(raw->messages.size(), 1); // the welcome, and no answer
    QVERIFY(!raw->anyMaskedFrame());
    QTRY_COMPARE(server->connectionCount(), 1);
}

void tst_BadInput::errorFrames_data()
{
    QTest::addColumn<int>("index");
    const QList<ErrorCase> cases = errorCases();
    for (int i = 0; i < cases.size(); ++i)
        QTest::addRow("%s", cases.at(i).name) << i;
}

void tst_BadInput::errorFrames()
{
    QFETCH(int, index);
    runErrorCase(errorCases().at(index));
}

void tst_BadInput::answeredFrames_data()
{
    QTest::addColumn<int>("index");
    const QList<AnsweredCase> cases = answeredCases();
    for (int i = 0; i < cases.size(); ++i)
        QTest::addRow("%s", cases.at(i).name) << i;
}

void tst_BadInput::answeredFrames()
{
    QFETCH(int, index);
    runAnsweredCase(answeredCases().at(index));
}

void tst_BadInput::closingFrames_data()
{
    QTest::addColumn<int>("index");
    const QList<ClosingCase> cases = closingCases();
    for (int i = 0; i < cases.size(); ++i)
        QTest::addRow("%s", cases.at(i).name) << i;
}

void tst_BadInput::closingFrames()
{
    QFETCH(int, index);
    runClosingCase(closingCases().at(index));
}

void tst_BadInput::frameSizeLimit_data()
{
    QTest::addColumn<qint64>("limit"); // 0 for the default, 64 KiB
    QTest::addColumn<bool>("setWhileConnected");
    QTest::addColumn<qint64>("size");
    QTest::addColumn<int>("closeCode"); // 0 when the frame is answered

    QTest::addRow("default, at the limit") << qint64(0) << false << qint64(64 * 1024) << 0;
    QTest::addRow("default, beyond") << qint64(0) << false << qint64(64 * 1024 + 1) << 1009;
    QTest::addRow("1 KiB, at the limit") << qint64(1024) << false << qint64(1024) << 0;
    QTest::addRow("1 KiB, beyond") << qint64(1024) << false << qint64(1025) << 1009;
    QTest::addRow("1 KiB set while connected, at the limit")
            << qint64(1024) << true << qint64(1024) << 0;
    QTest::addRow("1 KiB set while connected, beyond")
            << qint64(1024) << true << qint64(1025) << 1009;
}

void tst_BadInput::frameSizeLimit()
{
    QFETCH(qint64, limit);
    QFETCH(bool, setWhileConnected);
    QFETCH(qint64, size);
    QFETCH(int, closeCode);
    if (limit && !setWhileConnected)
        server->setMaxFrameSize(limit);
    auto raw = openRaw();
    QVERIFY(!QTest::currentTestFailed());
    if (limit && setWhileConnected)
        server->setMaxFrameSize(limit);
    const QJsonObject limits = raw->messages.first().value("limits").toObject();
    QCOMPARE(limits.value("maxFrameSize").toInteger(),
             limit && !setWhileConnected ? limit : qint64(64 * 1024));
    // A valid frame, padded with spaces to the size.
    const QByteArray frame = unlistenText("1");
    raw->sendText(frame + QByteArray(size - frame.size(), ' '));
    if (closeCode == 0) {
        QVERIFY(raw->waitForMessages("ack", 1));
        QCOMPARE(raw->messages.size(), 2);
    } else {
        QVERIFY(raw->waitForClose());
        QCOMPARE(*raw->closeCode, closeCode);
        QCOMPARE(raw->messages.size(), 1);
    }
}

void tst_BadInput::unfinishedFrameTimesOut()
{
    // A frame whose header promises more than ever comes is silence: the client is closed
    // (4408) once it has sent no whole frame, and answered no ping, for two heartbeat
    // intervals. What it sent of the frame waits meanwhile, within the frame size limit.
    server->setHeartbeatInterval(300ms);
    auto raw = openRaw();
    QVERIFY(!QTest::currentTestFailed());
    raw->answerPings = false;
    const QByteArray frame = Raw::text(unlistenText("1"));
    raw->write(frame.left(frame.size() - 4));
    QVERIFY(raw->waitForClose(10000));
    QCOMPARE(*raw->closeCode, 4408);
    QCOMPARE(raw->messages.size(), 1);
}

void tst_BadInput::unfinishedMessageIsDroppedWithItsConnection()
{
    // A fragmented message never finished is held (up to maxFrameSize) while the client
    // answers pings; it goes with the connection.
    auto raw = openRaw();
    QVERIFY(!QTest::currentTestFailed());
    raw->write(Raw::text(QByteArray(60000, ' '), { .fin = false }));
    raw->write(Raw::frame(Raw::Ping, "still here"));
    QTRY_COMPARE(raw->pongs.size(), 1);
    QCOMPARE(raw->pongs.first(), QByteArray("still here"));
    QCOMPARE(server->connectionCount(), 2);
    raw.reset();
}

void tst_BadInput::framesBeforeTheWelcome_data()
{
    QTest::addColumn<QByteArray>("request"); // the upgrade request
    QTest::addColumn<QByteArray>("frames");  // sent right behind it, without waiting
    QTest::addColumn<int>("chunk"); // 0: request and frames in one write; n: in writes of n bytes
    QTest::addColumn<QStringList>("answers"); // op, or error code, of each answer in order
    QTest::addColumn<int>("pongs");

    const QByteArray request = Raw::handshakeRequest();
    const QByteArray listen = Raw::text(listenText("1", R"("early")"));
    const QByteArray echo = Raw::text(requestText("2", R"("echo")"));
    const QByteArray garbage = Raw::text("garbage");
    const QByteArray three = listen + echo + garbage;
    const QStringList threeAnswers{ "ack", "reply", "invalid_json" };
    QTest::addRow("listen") << request << listen << 0 << QStringList{ "ack" } << 0;
    QTest::addRow("bad frame") << request << garbage << 0 << QStringList{ "invalid_json" } << 0;
    QTest::addRow("binary frame") << request << Raw::frame(Raw::Binary, "\x01") << 0
                                  << QStringList{ "binary_frame" } << 0;
    QTest::addRow("three frames") << request << three << 0 << threeAnswers << 0;
    QTest::addRow("ping") << request << Raw::frame(Raw::Ping, "early") << 0 << QStringList{} << 1;
    QTest::addRow("a frame split from its first bytes")
            << request << three << int(request.size() + 3) << threeAnswers << 0;
    // The end of the request, "\r\n\r\n", split across reads.
    QTest::addRow("in writes of 3 bytes") << request << three << 3 << threeAnswers << 0;
    QByteArray large = request;
    large.chop(2); // seven header lines of 8000 bytes, near the 64 KiB a request may take
    for (int i = 0; i < 7; ++i)
        large += "X-Padding-" + QByteArray::number(i) + ": " + QByteArray(8000, 'p') + "\r\n";
    large += "\r\n";
    QTest::addRow("a request of 56 KiB") << large << three << 0 << threeAnswers << 0;
    QTest::addRow("a request of 56 KiB in writes of 1000 bytes")
            << large << three << 1000 << threeAnswers << 0;
}

void tst_BadInput::framesBeforeTheWelcome()
{
    // A client need not wait for the welcome: the server reads what follows the upgrade
    // request once it has sent the welcome, and answers each frame in order.
    QFETCH(QByteArray, request);
    QFETCH(QByteArray, frames);
    QFETCH(int, chunk);
    QFETCH(QStringList, answers);
    QFETCH(int, pongs);
    RawWebSocket raw;
    QVERIFY(raw.connectToServer(server->serverPort()));
    raw.socket.setSocketOption(QAbstractSocket::LowDelayOption, 1); // a TCP segment per write
    const QByteArray bytes = request + frames;
    for (qsizetype at = 0; at<bytes.size(); at += chunk> 0 ? chunk : bytes.size()) {
        raw.write(bytes.mid(at, chunk > 0 ? chunk : -1));
        QVERIFY(raw.socket.flush());
    }
    QVERIFY(raw.waitForUpgrade());
    QTRY_COMPARE(raw.pongs.size(), pongs);
    raw.sendText(unlistenText("99"));
    QTRY_VERIFY(!raw.messages.isEmpty() && raw.messages.last().value("id").toInteger() == 99);
    QCOMPARE(raw.messages.first().value("op").toString(), QString("welcome"));
    QStringList got;
    for (const QJsonObject &answer : raw.messages.mid(1, raw.messages.size() - 2)) {
        const QString op = answer.value("op").toString();
        got.append(op == QLatin1String("error") ? answer.value("code").toString() : op);
    }
    QCOMPARE(got, answers);
    QCOMPARE(server->listenCount(), answers.contains("ack") ? 2 : 1);
    QVERIFY(!raw.anyMaskedFrame());
}

void tst_BadInput::refusedFrameWithTheHandshake_data()
{
    QTest::addColumn<QByteArray>("frame");
    QTest::addColumn<int>("closeCode");

    QTest::addRow("invalid UTF-8") << Raw::text("\xff") << 1007;
    QTest::addRow("RSV1 set") << Raw::text("{}", { .rsv = 4 }) << 1002;
    QTest::addRow("reserved opcode") << Raw::frame(3, {}) << 1002;
    QTest::addRow("close") << Raw::frame(Raw::Close, Raw::closePayload(1000)) << 1000;
}

void tst_BadInput::refusedFrameWithTheHandshake()
{
    // A frame Qt's WebSocket layer refuses, in the same write as the request: the connection
    // is welcomed, then closed with the frame's code, as any later frame would be.
    QFETCH(QByteArray, frame);
    QFETCH(int, closeCode);
    QSignalSpy connected(server.get(), &Server::clientConnected);
    QSignalSpy gone(server.get(), &Server::clientDisconnected);
    RawWebSocket raw;
    QVERIFY(raw.connectToServer(server->serverPort()));
    raw.write(Raw::handshakeRequest() + frame);
    QVERIFY(raw.waitForUpgrade());
    QVERIFY(raw.waitForClose());
    QCOMPARE(*raw.closeCode, closeCode);
    QCOMPARE(raw.messages.size(), 1);
    QCOMPARE(raw.messages.first().value("op").toString(), QString("welcome"));
    QCOMPARE(connected.size(), 1);
    QTRY_COMPARE(gone.size(), 1);
    QCOMPARE(server->connectionCount(), 1);
}

void tst_BadInput::handshakeInProgressWhenTheServerCloses()
{
    // A connection half-way through its upgrade request when the server closes is dropped,
    // never welcomed by the closed server.
    QSignalSpy connected(server.get(), &Server::clientConnected);
    RawWebSocket raw;
    QVERIFY(raw.connectToServer(server->serverPort()));
    const QByteArray request = Raw::handshakeRequest();
    raw.write(request.left(20));
    const ServerPrivate *d = ServerPrivate::get(server.get());
    QTRY_COMPARE(d->handshakesInProgress(), 1);
    server->close();
    QCOMPARE(d->handshakesInProgress(), 0);
    raw.write(request.mid(20));
    QTRY_VERIFY(raw.disconnected);
    QCOMPARE(raw.httpStatus, 0);
    QCOMPARE(connected.size(), 0);
    watcher.reset(); // closed with the server
}

void tst_BadInput::garbageInsteadOfAHandshake_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<int>("status"); // of the HTTP answer; 0 for none

    QTest::addRow("nothing") << QByteArray() << 0;
    QTest::addRow("a frame") << Raw::text(listenText("1", R"("k")")) << 0;
    // A request is answered with an HTTP error that says what is wrong (tst_upgrade has
    // more); one over 64 KiB with 431.
    QTest::addRow("binary with an empty line") << QByteArray("\x00\x01\xff\r\n\r\n", 7) << 400;
    QTest::addRow("HTTP without upgrade")
            << QByteArray("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") << 400;
    QTest::addRow("POST") << QByteArray("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") << 405;
    QByteArray noKey = Raw::handshakeRequest();
    noKey.replace("Sec-WebSocket-Key", "X-Key");
    QTest::addRow("no Sec-WebSocket-Key") << noKey << 400;
    QByteArray version8 = Raw::handshakeRequest();
    version8.replace("Version: 13", "Version: 8");
    QTest::addRow("WebSocket version 8") << version8 << 426;
    QTest::addRow("header line of 9 KiB")
            << QByteArray("GET / HTTP/1.1\r\nX: " + QByteArray(9 * 1024, 'x') + "\r\n\r\n") << 400;
    QTest::addRow("header of 1 MiB")
            << QByteArray("GET / HTTP/1.1\r\nX: " + QByteArray(1024 * 1024, 'x')) << 431;
    QTest::addRow("header line of 64 KiB")
            << QByteArray("GET / HTTP/1.1\r\nX: " + QByteArray(64 * 1024, 'x') + "\r\n\r\n") << 431;
}

void tst_BadInput::garbageInsteadOfAHandshake()
{
    QFETCH(QByteArray, bytes);
    QFETCH(int, status);
    // The handshake timeout closes what never completes a request.
    server->setHandshakeTimeout(200ms);
    QSignalSpy connected(server.get(), &Server::clientConnected);
    QSignalSpy refused(server.get(), &Server::clientRefused);
    RawWebSocket raw;
    QVERIFY(raw.connectToServer(server->serverPort()));
    raw.write(bytes);
    QTRY_VERIFY(raw.disconnected);
    QCOMPARE(raw.httpStatus, status);
    QVERIFY(raw.frames.isEmpty());
    QCOMPARE(connected.size(), 0);
    QCOMPARE(refused.size(), 0);
}

void tst_BadInput::fileDescriptorsRunOut()
{
#ifndef Q_OS_UNIX
    QSKIP("needs setrlimit()");
#else
    // A process out of file descriptors cannot accept a connection, and QTcpServer then stops
    // accepting for good. The server tries again, takes the connection once a descriptor is
    // free, and serves its clients (the watcher) throughout.
    rlimit limit{};
    QCOMPARE(getrlimit(RLIMIT_NOFILE, &limit), 0);
    const rlimit saved = limit;
    std::vector<int> held; // descriptors that take the room left, to give back one by one
    const auto restore = qScopeGuard([&] {
        for (int fd : held)
            ::close(fd);
        setrlimit(RLIMIT_NOFILE, &saved);
    });
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, rlim_t(baselineFds) + 32);
    QCOMPARE(setrlimit(RLIMIT_NOFILE, &limit), 0);
    for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;)
        held.push_back(fd);
    QCOMPARE(errno, EMFILE);
    QVERIFY(held.size() >= 3);

    // One descriptor free: the client's socket takes it, the server's accept fails.
    ::close(held.back());
    held.pop_back();
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("cannot accept a connection: .+"));
    const Acceptor &acceptor = ServerPrivate::get(server.get())->acceptor;
    RawWebSocket raw;
    QVERIFY(raw.connectToServer(server->serverPort())); // the kernel's backlog holds it
    raw.write(Raw::handshakeRequest());
    // It tries again less and less often: never in a loop that takes a core.
    QTRY_VERIFY(acceptor.acceptFailures() >= 4);
    QVERIFY(acceptor.acceptRetryDelay() >= 8 * Acceptor::FirstAcceptRetry);
    QCOMPARE(raw.httpStatus, 0);
    QVERIFY(!raw.disconnected);
    verifyWatcher();

    // Descriptors free again: the server takes the connection at its next try.
    for (int i = 0; i < 2; ++i) {
        ::close(held.back());
        held.pop_back();
    }
    QTest::ignoreMessage(QtInfoMsg, "accepting connections again");
    QVERIFY(raw.waitForUpgrade());
    QVERIFY(raw.waitForMessages("welcome", 1));
    raw.sendText(unlistenText("7"));
    QVERIFY(raw.waitForMessages("ack", 1));
#endif
}

void tst_BadInput::badFrameFlood()
{
    // A thousand bad frames in one write: a thousand errors, in order, and the connection stays.
    auto raw = openRaw();
    QVERIFY(!QTest::currentTestFailed());
    QByteArray flood;
    for (int i = 0; i < 1000; ++i)
        flood += Raw::text(R"({"op":"nope","id":)" + QByteArray::number(i) + '}');
    raw->write(flood);
    QVERIFY(raw->waitForMessages("error", 1000, 10000));
    const QList<QJsonObject> errors = raw->messagesOf("error");
    for (int i = 0; i < 1000; ++i) {
        QCOMPARE(errors.at(i).value("code").toString(), QString("unknown_op"));
        QCOMPARE(errors.at(i).value("id").toInteger(), i);
    }
    raw->sendText(unlistenText("99"));
    QVERIFY(raw->waitForMessages("ack", 1));
}

void tst_BadInput::requestFlood()
{
    // No refill to speak of during the test: exactly the burst is served.
    server->setRequestRate(1.0 / 3600, 10);
    auto raw = openRaw();
    QVERIFY(!QTest::currentTestFailed());
    QByteArray flood;
    for (int i = 1; i <= 30; ++i)
        flood += Raw::text(requestText(QByteArray::number(i), R"("echo")"));
    raw->write(flood);
    QTRY_COMPARE(raw->messages.size(), 31);
    for (int i = 1; i <= 30; ++i) {
        const QJsonObject answer = raw->messages.at(i);
        QCOMPARE(answer.value("id").toInteger(), i);
        if (i <= 10)
            QCOMPARE(answer.value("op").toString(), QString("reply"));
        else
            QCOMPARE(answer.value("code").toString(), QString("rate_limited"));
    }
}

void tst_BadInput::listenFlood()
{
    server->setMaxListensPerConnection(20);
    auto raw = openRaw();
    QVERIFY(!QTest::currentTestFailed());
    QByteArray flood;
    for (int i = 1; i <= 50; ++i)
        flood += Raw::text(listenText(QByteArray::number(i), '"' + QByteArray::number(i) + '"'));
    raw->write(flood);
    QTRY_COMPARE(raw->messages.size(), 51);
    for (int i = 1; i <= 50; ++i) {
        const QJsonObject answer = raw->messages.at(i);
        QCOMPARE(answer.value("id").toInteger(), i);
        if (i <= 20)
            QCOMPARE(answer.value("op").toString(), QString("ack"));
        else
            QCOMPARE(answer.value("code").toString(), QString("too_many_listens"));
    }
    QCOMPARE(server->listenCount(), 21);
    QCOMPARE(server->keyCount(), 21);
}

void tst_BadInput::pingFlood()
{
    // Every ping is answered, in order; the server keeps serving the others meanwhile.
    auto raw = openRaw();
    QVERIFY(!QTest::currentTestFailed());
    QByteArray flood;
    for (int i = 0; i < 1000; ++i)
        flood += Raw::frame(Raw::Ping, QByteArray::number(i));
    raw->write(flood);
    QTRY_COMPARE_WITH_TIMEOUT(raw->pongs.size(), 1000, 10000);
    for (int i = 0; i < 1000; ++i)
        QCOMPARE(raw->pongs.at(i), QByteArray::number(i));
    raw->sendText(unlistenText("99"));
    QVERIFY(raw->waitForMessages("ack", 1));
}

void tst_BadInput::pongFlood()
{
    // Pongs nobody asked for are ignored.
    auto raw = openRaw();
    QVERIFY(!QTest::currentTestFailed());
    QByteArray flood;
    for (int i = 0; i < 1000; ++i)
        flood += Raw::frame(Raw::Pong, QByteArray::number(i));
    raw->write(flood);
    raw->sendText(unlistenText("99"));
    QVERIFY(raw->waitForMessages("ack", 1));
    QCOMPARE(raw->messages.size(), 2);
}

void tst_BadInput::pingFloodFromAClientThatDoesNotRead_data()
{
    QTest::addColumn<bool>("pongs");
    // Silent but for its pings: caught by the first heartbeat after its pongs passed the send
    // bound (within two intervals, before it counts as silent).
    QTest::addRow("pings") << false;
    // Its pongs keep it alive: caught by the first pong after.
    QTest::addRow("pings and pongs") << true;
}

void tst_BadInput::pingFloodFromAClientThatDoesNotRead()
{
    // Qt answers every ping by itself: a client that sends pings and reads nothing would have
    // the server hold every pong. It is closed as any client that does not read (4413).
    QFETCH(bool, pongs);
    server->setMaxSendQueue(256 * 1024);
    server->setHeartbeatInterval(2s);
    QSignalSpy gone(server.get(), &Server::clientDisconnected);
    auto raw = openRaw();
    QVERIFY(!QTest::currentTestFailed());
    // Its receive buffer keeps the kernel's default: shrunk to a few KiB, a buffer full of the
    // server's small pong segments makes the kernel drop segments on loopback, and the client's
    // own stream of pings can stall on retransmission timeouts, silent for seconds.
    raw->setReading(false);
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("does not read.*closing it \\(4413\\)"));
    // 8 MiB of pings: more than the kernel's buffers on both sides take.
    const QByteArray ping = Raw::frame(Raw::Ping, QByteArray(125, 'p'));
    const QByteArray pong = Raw::frame(Raw::Pong, {});
    for (int i = 0; i < 64 * 1024; ++i)
        raw->write(pongs && i % 64 == 0 ? ping + pong : ping);
    QTRY_COMPARE_WITH_TIMEOUT(gone.size(), 1, 10000);
    QCOMPARE(server->connectionCount(), 1);
}

void tst_BadInput::everyCaseOnOneServer()
{
    // The tables above, one case after another, against one server and one watcher.
    const auto failed = [](const char *name) {
        if (!QTest::currentTestFailed())
            return false;
        qWarning("failed in the case \"%s\"", name);
        return true;
    };
    for (const ErrorCase &c : errorCases()) {
        runErrorCase(c);
        if (failed(c.name))
            return;
    }
    for (const AnsweredCase &c : answeredCases()) {
        runAnsweredCase(c);
        QTRY_COMPARE(server->listenCount(), 1); // the raw client and its listen are gone
        if (failed(c.name))
            return;
    }
    for (const ClosingCase &c : closingCases()) {
        runClosingCase(c);
        if (failed(c.name))
            return;
    }
    verifyWatcher();
}

QTNOTIF_TEST_MAIN(tst_BadInput)

#include "tst_badinput.moc"
