// Wire protocol v1: names, codes and the frame codec shared by the server and the client.
// docs/protocol.md is the specification; this header is its one implementation.
#pragma once

#include <QtNotif/qtnotif_protocol_export.h>

#include <QtCore/QByteArray>
#include <QtCore/QJsonObject>
#include <QtCore/QJsonValue>
#include <QtCore/QLatin1String>
#include <QtCore/QString>

#include <optional>
#include <variant>

namespace QtNotif::Protocol {

inline constexpr int Version = 1;

// The WebSocket subprotocol a client must offer and the server selects.
inline constexpr QLatin1String Subprotocol("qtnotif.v1");
// A client that cannot set headers (a browser) may offer its token as one more subprotocol,
// "qtnotif.bearer.<token>", after qtnotif.v1. The server never selects it.
inline constexpr QLatin1String TokenSubprotocolPrefix("qtnotif.bearer.");

// The "op" of every frame.
namespace Op {
inline constexpr QLatin1String Welcome("welcome");
inline constexpr QLatin1String Identity("identity");
inline constexpr QLatin1String Listen("listen");
inline constexpr QLatin1String Unlisten("unlisten");
inline constexpr QLatin1String Ack("ack");
inline constexpr QLatin1String Notif("notif");
inline constexpr QLatin1String Unlistened("unlistened");
inline constexpr QLatin1String Listened("listened");
inline constexpr QLatin1String Request("request");
inline constexpr QLatin1String Reply("reply");
inline constexpr QLatin1String Error("error");
} // namespace Op

// Stable error codes of "error" frames (docs/protocol.md lists when each is sent). Upstream
// handlers answer with codes of their own (Request::fail()) and should not reuse these.
namespace ErrorCode {
inline constexpr QLatin1String InvalidJson("invalid_json");
inline constexpr QLatin1String NotAnObject("not_an_object");
inline constexpr QLatin1String BinaryFrame("binary_frame");
inline constexpr QLatin1String UnknownOp("unknown_op");
inline constexpr QLatin1String InvalidField("invalid_field");
inline constexpr QLatin1String UnknownNotifier("unknown_notifier");
inline constexpr QLatin1String InvalidKey("invalid_key");
inline constexpr QLatin1String ListenDenied("listen_denied");
inline constexpr QLatin1String TooManyListens("too_many_listens");
inline constexpr QLatin1String UnknownMethod("unknown_method");
inline constexpr QLatin1String RateLimited("rate_limited");
inline constexpr QLatin1String NoReply("no_reply");
// Client-side only: never sent by a server, reported by the client library.
inline constexpr QLatin1String NotConnected("not_connected");
inline constexpr QLatin1String ConnectionLost("connection_lost");
inline constexpr QLatin1String Timeout("timeout");
} // namespace ErrorCode

// Reasons of "unlistened" frames.
namespace UnlistenReason {
inline constexpr QLatin1String Server("server"); // the server unlistened this client
inline constexpr QLatin1String User("user");     // the server unlistened every client of the user
inline constexpr QLatin1String Notifier("notifier"); // the notifier was removed from the server
} // namespace UnlistenReason

// WebSocket close codes the server uses, besides the standard ones (1000 normal, 1001 going
// away, 1007 invalid UTF-8, 1009 message too big, 1011 internal error).
enum CloseCode : quint16 {
    ProtocolViolation = 4400,     // the client did not offer the qtnotif.v1 subprotocol
    AuthenticationRefused = 4401, // the authenticator refused; the close reason says why
    OriginNotAllowed = 4403,      // a browser page of an origin the server does not allow
    HeartbeatTimeout = 4408,      // nothing heard from the peer for two heartbeat intervals
    SlowClient = 4413,            // the client does not read: too many bytes wait to be sent to it
    CredentialsExpired = 4419,    // the token expired (or was already expired at the handshake)
    TooManyConnections = 4429,    // the user already holds the most connections the server allows
};

// One frame from a client, decoded and checked for shape.
struct ClientFrame
{
    enum class Kind { Listen, Unlisten, Request };
    Kind kind = Kind::Listen;
    qint64 id = 0;
    QString notifier;   // listen, unlisten
    QJsonValue key;     // listen, unlisten
    QString method;     // request
    QJsonValue payload; // request
};

// Why a client frame was rejected: the error frame to answer with.
struct FrameError
{
    QLatin1String code;
    QString message;
    std::optional<qint64> id; // the request id, when the frame had a readable one
};

// Decodes one text frame from a client. Never throws, never asserts: any input gives either a
// ClientFrame or the FrameError to send back.
QTNOTIF_PROTOCOL_EXPORT std::variant<ClientFrame, FrameError> decodeClientFrame(
        const QByteArray &utf8);

// Parses one text frame into a JSON object (the client library's first step).
QTNOTIF_PROTOCOL_EXPORT std::optional<QJsonObject> parseObject(const QByteArray &utf8);

// The canonical text of a key: compact JSON. Two keys are the same key when their canonical
// texts are equal (object fields are sorted, 1 and 1.0 are the same number).
QTNOTIF_PROTOCOL_EXPORT QString canonicalKey(const QJsonValue &key);

// Compact JSON text of any value, scalars included.
QTNOTIF_PROTOCOL_EXPORT QString toJsonText(const QJsonValue &value);
// The same text in UTF-8, as it goes on the wire: toJsonText(value).toUtf8() without the round
// trip through UTF-16.
QTNOTIF_PROTOCOL_EXPORT QByteArray toJsonUtf8(const QJsonValue &value);

// A name the client sent (an op, a notifier, a method), quoted for an error message, and cut to
// 64 characters so that an error is never much larger than what it answers.
QTNOTIF_PROTOCOL_EXPORT QString quotedName(const QString &name);

// Frame encoders. Each returns the compact JSON text of one frame.
QTNOTIF_PROTOCOL_EXPORT QString encode(const QJsonObject &frame);
QTNOTIF_PROTOCOL_EXPORT QString errorFrame(QLatin1String code, const QString &message,
                                           std::optional<qint64> id = std::nullopt);
QTNOTIF_PROTOCOL_EXPORT QString errorFrame(const QString &code, const QString &message,
                                           std::optional<qint64> id);
QTNOTIF_PROTOCOL_EXPORT QString ackFrame(qint64 id, const QJsonObject &fields = {});
QTNOTIF_PROTOCOL_EXPORT QString replyFrame(qint64 id, const QJsonValue &result);
// keyText is canonicalKey(key); dataText is toJsonText(data): both are computed once per
// notify and shared by every recipient.
QTNOTIF_PROTOCOL_EXPORT QString notifFrame(const QString &notifierText, const QString &keyText,
                                           quint64 seq, const QString &dataText);
QTNOTIF_PROTOCOL_EXPORT QString unlistenedFrame(const QString &notifier, const QJsonValue &key,
                                                QLatin1String reason);
QTNOTIF_PROTOCOL_EXPORT QString listenFrame(QLatin1String op, qint64 id, const QString &notifier,
                                            const QJsonValue &key);
QTNOTIF_PROTOCOL_EXPORT QString requestFrame(qint64 id, const QString &method,
                                             const QJsonValue &payload);

} // namespace QtNotif::Protocol
