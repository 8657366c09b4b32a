#include "protocol.h"

#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonParseError>

namespace QtNotif::Protocol {

namespace {

// Request ids are integers a JavaScript client can hold exactly.
constexpr qint64 MaxId = (qint64(1) << 53) - 1;

std::optional<qint64> readId(const QJsonObject &frame)
{
    const QJsonValue value = frame.value(QLatin1String("id"));
    const qint64 id = value.toInteger(-1);
    if (id < 0 || id > MaxId || id != value.toInteger(-2))
        return std::nullopt;
    return id;
}

FrameError invalidField(const char *field, const char *expected, std::optional<qint64> id)
{
    return FrameError{ ErrorCode::InvalidField,
                       QStringLiteral("field \"%1\" must be %2")
                               .arg(QLatin1String(field), QLatin1String(expected)),
                       id };
}

} // namespace

std::optional<QJsonObject> parseObject(const QByteArray &utf8)
{
    QJsonParseError error;
    const QJsonDocument document = QJsonDocument::fromJson(utf8, &error);
    if (error.error != QJsonParseError::NoError || !document.isObject())
        return std::nullopt;
    return document.object();
}

std::variant<ClientFrame, FrameError> decodeClientFrame(const QByteArray &utf8)
{
    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(utf8, &parseError);
    if (parseError.error != QJsonParseError::NoError) {
        return FrameError{ ErrorCode::InvalidJson,
                           QStringLiteral("not JSON: %1 at offset %2")
                                   .arg(parseError.errorString())
                                   .arg(parseError.offset),
                           std::nullopt };
    }
    if (!document.isObject()) {
        return FrameError{ ErrorCode::NotAnObject, QStringLiteral("a frame must be a JSON object"),
                           std::nullopt };
    }
    const QJsonObject object = document.object();
    const QJsonValue opValue = object.value(QLatin1String("op"));
    const std::optional<qint64> id = readId(object);
    if (!opValue.isString())
        return invalidField("op", "a string", id);
    const QString op = opValue.toString();

    ClientFrame frame;
    if (op == Op::Listen || op == Op::Unlisten) {
        frame.kind = op == Op::Listen ? ClientFrame::Kind::Listen : ClientFrame::Kind::Unlisten;
        const QJsonValue notifier = object.value(QLatin1String("notifier"));
        if (!notifier.isString())
            return invalidField("notifier", "a string", id);
        frame.notifier = notifier.toString();
        frame.key = object.value(QLatin1String("key"));
        if (frame.key.isUndefined() || frame.key.isNull())
            return invalidField("key", "present and not null", id);
    } else if (op == Op::Request) {
        frame.kind = ClientFrame::Kind::Request;
        const QJsonValue method = object.value(QLatin1String("method"));
        if (!method.isString())
            return invalidField("method", "a string", id);
        frame.method = method.toString();
        frame.payload = object.value(QLatin1String("payload"));
        if (frame.payload.isUndefined())
            frame.payload = QJsonValue(QJsonValue::Null);
    } else {
        return FrameError{ ErrorCode::UnknownOp, QStringLiteral("unknown op ") + quotedName(op),
                           id };
    }
    if (!id)
        return invalidField("id", "an integer from 0 to 2^53-1", std::nullopt);
    frame.id = *id;
    return frame;
}

namespace {

// A string in JSON as QJsonDocument writes it, for strings of ASCII characters (keys, notifier
// names): the common case, without a QJsonArray and a QJsonDocument around it. Empty when the
// string has other characters; the caller then asks QJsonDocument.
QByteArray asciiJsonString(QStringView text)
{
    QByteArray json;
    json.reserve(text.size() + 2);
    json.append('"');
    for (const QChar c : text) {
        const char16_t u = c.unicode();
        if (u >= 0x80)
            return QByteArray();
        if (u >= 0x20 && u != u'"' && u != u'\\') {
            json.append(char(u));
            continue;
        }
        json.append('\\');
        switch (u) {
        case u'"':
            json.append('"');
            break;
        case u'\\':
            json.append('\\');
            break;
        case u'\b':
            json.append('b');
            break;
        case u'\f':
            json.append('f');
            break;
        case u'\n':
            json.append('n');
            break;
        case u'\r':
            json.append('r');
            break;
        case u'\t':
            json.append('t');
            break;
        default: {
            constexpr char Hex[] = "0123456789abcdef";
            const char escape[] = { 'u', '0', '0', Hex[u >> 4], Hex[u & 0xf] };
            json.append(escape, sizeof escape);
        }
        }
    }
    json.append('"');
    return json;
}

} // namespace

QByteArray toJsonUtf8(const QJsonValue &value)
{
    if (value.isObject())
        return QJsonDocument(value.toObject()).toJson(QJsonDocument::Compact);
    if (value.isArray())
        return QJsonDocument(value.toArray()).toJson(QJsonDocument::Compact);
    if (value.isUndefined() || value.isNull())
        return QByteArrayLiteral("null");
    if (value.isBool())
        return value.toBool() ? QByteArrayLiteral("true") : QByteArrayLiteral("false");
    if (value.isString()) {
        QByteArray json = asciiJsonString(value.toString());
        if (!json.isEmpty())
            return json;
    }
    // QJsonDocument holds only objects and arrays: wrap the scalar and strip the brackets.
    const QByteArray wrapped = QJsonDocument(QJsonArray{ value }).toJson(QJsonDocument::Compact);
    return wrapped.mid(1, wrapped.size() - 2);
}

QString toJsonText(const QJsonValue &value)
{
    return QString::fromUtf8(toJsonUtf8(value));
}

QString quotedName(const QString &name)
{
    constexpr qsizetype Longest = 64;
    if (name.size() <= Longest)
        return u'"' + name + u'"';
    // Never half of a surrogate pair.
    const qsizetype cut = name.at(Longest - 1).isHighSurrogate() ? Longest - 1 : Longest;
    return u'"' + name.left(cut) + QStringLiteral("\u2026\"");
}

QString canonicalKey(const QJsonValue &key)
{
    return toJsonText(key);
}

QString encode(const QJsonObject &frame)
{
    return QString::fromUtf8(QJsonDocument(frame).toJson(QJsonDocument::Compact));
}

QString errorFrame(const QString &code, const QString &message, std::optional<qint64> id)
{
    QJsonObject frame{ { QLatin1String("op"), Op::Error },
                       { QLatin1String("code"), code },
                       { QLatin1String("message"), message } };
    if (id)
        frame.insert(QLatin1String("id"), *id);
    return encode(frame);
}

QString errorFrame(QLatin1String code, const QString &message, std::optional<qint64> id)
{
    return errorFrame(QString(code), message, id);
}

QString ackFrame(qint64 id, const QJsonObject &fields)
{
    QJsonObject frame = fields;
    frame.insert(QLatin1String("op"), Op::Ack);
    frame.insert(QLatin1String("id"), id);
    return encode(frame);
}

QString replyFrame(qint64 id, const QJsonValue &result)
{
    if (result.isUndefined()) // a QJsonObject leaves the member out
        return encode({ { QLatin1String("op"), Op::Reply }, { QLatin1String("id"), id } });
    // What encode() writes for {op, id, result} (members sorted), assembled: the result is
    // encoded alone, and the frame around it is not built as a QJsonObject for every reply.
    return QLatin1String("{\"id\":") + QString::number(id) + QLatin1String(",\"op\":\"") + Op::Reply
           + QLatin1String("\",\"result\":") + toJsonText(result) + QLatin1Char('}');
}

QString notifFrame(const QString &notifierText, const QString &keyText, quint64 seq,
                   const QString &dataText)
{
    // Assembled from pre-encoded parts so that a notify encodes key and data once, whatever
    // the number of recipients.
    return QLatin1String("{\"op\":\"notif\",\"notifier\":") + notifierText
           + QLatin1String(",\"key\":") + keyText + QLatin1String(",\"seq\":")
           + QString::number(seq) + QLatin1String(",\"data\":") + dataText + QLatin1Char('}');
}

QString unlistenedFrame(const QString &notifier, const QJsonValue &key, QLatin1String reason)
{
    return encode({ { QLatin1String("op"), Op::Unlistened },
                    { QLatin1String("notifier"), notifier },
                    { QLatin1String("key"), key },
                    { QLatin1String("reason"), reason } });
}

QString listenFrame(QLatin1String op, qint64 id, const QString &notifier, const QJsonValue &key)
{
    return encode({ { QLatin1String("op"), op },
                    { QLatin1String("id"), id },
                    { QLatin1String("notifier"), notifier },
                    { QLatin1String("key"), key } });
}

QString requestFrame(qint64 id, const QString &method, const QJsonValue &payload)
{
    return encode({ { QLatin1String("op"), Op::Request },
                    { QLatin1String("id"), id },
                    { QLatin1String("method"), method },
                    { QLatin1String("payload"), payload } });
}

} // namespace QtNotif::Protocol
