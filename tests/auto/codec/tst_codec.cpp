// Value codecs and the client frame decoder: ordinary C++ types in and out of JSON, and every
// kind of bad frame answered with its error code.
#include <QtNotif/codec.h>
#include <QtNotif/protocol.h>

#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtTest/QTest>

using namespace QtNotif;

struct Author
{
    Q_GADGET
    Q_PROPERTY(QString name MEMBER name)
    Q_PROPERTY(int karma MEMBER karma)
public:
    QString name;
    int karma = 0;
    friend bool operator==(const Author &a, const Author &b)
    {
        return a.name == b.name && a.karma == b.karma;
    }
};

struct Message
{
    Q_GADGET
    Q_PROPERTY(QString text MEMBER text)
    Q_PROPERTY(Author author MEMBER author)
    Q_PROPERTY(QStringList tags MEMBER tags)
    Q_PROPERTY(double sentAt MEMBER sentAt)
public:
    QString text;
    Author author;
    QStringList tags;
    double sentAt = 0;
    friend bool operator==(const Message &a, const Message &b)
    {
        return a.text == b.text && a.author == b.author && a.tags == b.tags && a.sentAt == b.sentAt;
    }
};

class tst_Codec : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void roundTrips();
    void integersRejectWhatTheyCannotHold();
    void wrongShapesDoNotDecode();
    void gadgets();
    void gadgetWithWrongFieldTypeDoesNotDecode();
    void canonicalKeys();
    void decodeValidFrames();
    void decodeBadFrames_data();
    void decodeBadFrames();
    void notifFrameIsValidJson();
    void jsonTextIsWhatQJsonDocumentWrites();
    void replyFrameIsTheEncodedObject();
    void errorMessagesQuoteNamesShort();
};

template<typename T>
static void checkRoundTrip(const T &value)
{
    const QJsonValue json = Codec<T>::encode(value);
    const std::optional<T> back = Codec<T>::decode(json);
    QVERIFY(back.has_value());
    QCOMPARE(*back, value);
}

void tst_Codec::roundTrips()
{
    checkRoundTrip(QString("room 1"));
    checkRoundTrip(true);
    checkRoundTrip(42);
    checkRoundTrip(qint64(1) << 52);
    checkRoundTrip(quint16(65535));
    checkRoundTrip(2.5);
    checkRoundTrip(QStringList{ "a", "b" });
    checkRoundTrip(QList<int>{ 1, 2, 3 });
    checkRoundTrip(QVariantMap{ { "text", "hi" }, { "n", 3 } });
    checkRoundTrip(QJsonObject{ { "x", 1 } });
    checkRoundTrip(QJsonArray{ 1, "two" });
    checkRoundTrip(QJsonValue("v"));
    checkRoundTrip(std::optional<int>());
    checkRoundTrip(std::optional<int>(7));
    enum class Colour { Red = 1, Green = 2 };
    checkRoundTrip(Colour::Green);
}

void tst_Codec::integersRejectWhatTheyCannotHold()
{
    QVERIFY(!Codec<int>::decode(QJsonValue(1.5)));
    QVERIFY(!Codec<int>::decode(QJsonValue(double(1LL << 40))));
    QVERIFY(!Codec<quint8>::decode(QJsonValue(-1)));
    QVERIFY(!Codec<int>::decode(QJsonValue("1")));
    QVERIFY(!Codec<int>::decode(QJsonValue(1e300)));
    QCOMPARE(Codec<int>::decode(QJsonValue(-7)).value(), -7);
    QCOMPARE(Codec<int>::decode(QJsonValue(3.0)).value(), 3);
    // Nor floats what is beyond their range.
    QVERIFY(!Codec<float>::decode(QJsonValue(1e300)));
    QVERIFY(!Codec<float>::decode(QJsonValue(-1e39)));
    QCOMPARE(Codec<float>::decode(QJsonValue(0.5)).value(), 0.5f);
    QCOMPARE(Codec<double>::decode(QJsonValue(1e300)).value(), 1e300);
}

void tst_Codec::wrongShapesDoNotDecode()
{
    QVERIFY(!Codec<QString>::decode(QJsonValue(1)));
    QVERIFY(!Codec<bool>::decode(QJsonValue(0)));
    QVERIFY(!Codec<QStringList>::decode(QJsonArray{ "a", 1 }));
    QVERIFY(!Codec<QJsonObject>::decode(QJsonArray{}));
    QVERIFY(!Codec<QVariantMap>::decode(QJsonValue("x")));
    QVERIFY(!Codec<double>::decode(QJsonValue("1.0")));
}

void tst_Codec::gadgets()
{
    const Message message{ "hello", Author{ "alice", 3 }, { "news" }, 12.5 };
    const QJsonValue json = Codec<Message>::encode(message);
    QCOMPARE(json["author"]["name"].toString(), QString("alice"));
    QCOMPARE(json["tags"].toArray().size(), 1);
    checkRoundTrip(message);

    // Missing fields keep their defaults; unknown fields are ignored.
    const auto partial = Codec<Message>::decode(QJsonObject{ { "text", "t" }, { "extra", 1 } });
    QVERIFY(partial);
    QCOMPARE(partial->text, QString("t"));
    QCOMPARE(partial->author.karma, 0);

    checkRoundTrip(QList<Author>{ { "a", 1 }, { "b", 2 } });
    QCOMPARE(variantToJson(QVariant::fromValue(Author{ "bob", 1 }))["name"].toString(),
             QString("bob"));
}

void tst_Codec::gadgetWithWrongFieldTypeDoesNotDecode()
{
    QVERIFY(!Codec<Message>::decode(QJsonObject{ { "text", 1 } }));
    QVERIFY(!Codec<Message>::decode(QJsonObject{ { "author", QJsonObject{ { "karma", "x" } } } }));
    QVERIFY(!Codec<Message>::decode(QJsonValue("not an object")));
}

void tst_Codec::canonicalKeys()
{
    using Protocol::canonicalKey;
    QCOMPARE(canonicalKey(QJsonValue("room")), QString("\"room\""));
    QCOMPARE(canonicalKey(QJsonValue(42)), QString("42"));
    QCOMPARE(canonicalKey(QJsonValue(42.0)), canonicalKey(QJsonValue(42)));
    const QJsonObject ab = QJsonDocument::fromJson(R"({"a":1,"b":2})").object();
    const QJsonObject ba = QJsonDocument::fromJson(R"({"b":2,"a":1})").object();
    QCOMPARE(canonicalKey(ab), canonicalKey(ba));
    QVERIFY(canonicalKey(QJsonValue("1")) != canonicalKey(QJsonValue(1)));
}

void tst_Codec::decodeValidFrames()
{
    using namespace Protocol;
    auto listen
            = decodeClientFrame(R"({"op":"listen","id":1,"notifier":"chat","key":"r","x":true})");
    QVERIFY(std::holds_alternative<ClientFrame>(listen));
    const auto &frame = std::get<ClientFrame>(listen);
    QCOMPARE(frame.kind, ClientFrame::Kind::Listen);
    QCOMPARE(frame.id, 1);
    QCOMPARE(frame.notifier, QString("chat"));
    QCOMPARE(frame.key, QJsonValue("r"));

    auto request = decodeClientFrame(R"({"op":"request","id":9007199254740991,"method":"send"})");
    QVERIFY(std::holds_alternative<ClientFrame>(request));
    QCOMPARE(std::get<ClientFrame>(request).payload, QJsonValue(QJsonValue::Null));
    QCOMPARE(std::get<ClientFrame>(request).id, 9007199254740991LL);
}

void tst_Codec::decodeBadFrames_data()
{
    QTest::addColumn<QByteArray>("frame");
    QTest::addColumn<QString>("code");
    QTest::addColumn<qint64>("id"); // -1: no id in the error

    QTest::addRow("not JSON") << QByteArray("hello") << "invalid_json" << -1LL;
    QTest::addRow("truncated") << QByteArray(R"({"op":"listen")") << "invalid_json" << -1LL;
    QTest::addRow("empty") << QByteArray() << "invalid_json" << -1LL;
    QTest::addRow("array") << QByteArray("[1,2]") << "not_an_object" << -1LL;
    QTest::addRow("invalid UTF-8") << QByteArray("{\"op\":\"\xff\xfe\"}") << "invalid_json" << -1LL;
    QTest::addRow("no op") << QByteArray(R"({"id":3})") << "invalid_field" << 3LL;
    QTest::addRow("op not a string") << QByteArray(R"({"op":5,"id":3})") << "invalid_field" << 3LL;
    QTest::addRow("unknown op") << QByteArray(R"({"op":"dance","id":4})") << "unknown_op" << 4LL;
    QTest::addRow("server op sent by a client")
            << QByteArray(R"({"op":"notif","id":4})") << "unknown_op" << 4LL;
    QTest::addRow("listen without id")
            << QByteArray(R"({"op":"listen","notifier":"n","key":1})") << "invalid_field" << -1LL;
    QTest::addRow("id a string") << QByteArray(R"({"op":"listen","id":"1","notifier":"n","key":1})")
                                 << "invalid_field" << -1LL;
    QTest::addRow("id negative") << QByteArray(R"({"op":"listen","id":-1,"notifier":"n","key":1})")
                                 << "invalid_field" << -1LL;
    QTest::addRow("id fractional")
            << QByteArray(R"({"op":"listen","id":1.5,"notifier":"n","key":1})") << "invalid_field"
            << -1LL;
    QTest::addRow("id huge") << QByteArray(R"({"op":"listen","id":1e300,"notifier":"n","key":1})")
                             << "invalid_field" << -1LL;
    QTest::addRow("notifier a number")
            << QByteArray(R"({"op":"listen","id":2,"notifier":1,"key":1})") << "invalid_field"
            << 2LL;
    QTest::addRow("key missing") << QByteArray(R"({"op":"unlisten","id":2,"notifier":"n"})")
                                 << "invalid_field" << 2LL;
    QTest::addRow("key null") << QByteArray(R"({"op":"listen","id":2,"notifier":"n","key":null})")
                              << "invalid_field" << 2LL;
    QTest::addRow("method missing")
            << QByteArray(R"({"op":"request","id":6})") << "invalid_field" << 6LL;
    QByteArray deep(5000, '[');
    deep.append(QByteArray(5000, ']'));
    QTest::addRow("deep nesting") << deep << "invalid_json" << -1LL;
}

void tst_Codec::decodeBadFrames()
{
    QFETCH(QByteArray, frame);
    QFETCH(QString, code);
    QFETCH(qint64, id);
    const auto decoded = Protocol::decodeClientFrame(frame);
    QVERIFY(std::holds_alternative<Protocol::FrameError>(decoded));
    const auto &error = std::get<Protocol::FrameError>(decoded);
    QCOMPARE(QString(error.code), code);
    QVERIFY(!error.message.isEmpty());
    QCOMPARE(error.id.value_or(-1), id);
}

void tst_Codec::notifFrameIsValidJson()
{
    using namespace Protocol;
    const QString text = notifFrame(toJsonText(QJsonValue("ch\"at")), canonicalKey(QJsonValue(7)),
                                    3, toJsonText(QJsonObject{ { "t", "x" } }));
    const auto object = parseObject(text.toUtf8());
    QVERIFY(object);
    QCOMPARE(object->value("notifier").toString(), QString("ch\"at"));
    QCOMPARE(object->value("key").toInt(), 7);
    QCOMPARE(object->value("seq").toInt(), 3);
    QCOMPARE(object->value("data")["t"].toString(), QString("x"));
}

// toJsonText() writes strings of ASCII characters itself: exactly as QJsonDocument does, every
// character escaped or not as there, and other strings and values through QJsonDocument.
void tst_Codec::jsonTextIsWhatQJsonDocumentWrites()
{
    const auto viaDocument = [](const QJsonValue &value) {
        const QByteArray wrapped
                = QJsonDocument(QJsonArray{ value }).toJson(QJsonDocument::Compact);
        return wrapped.mid(1, wrapped.size() - 2);
    };
    QList<QJsonValue> values;
    QString everyAscii;
    for (char16_t u = 0; u < 0x80; ++u) {
        values.append(QString(QChar(u)));
        everyAscii.append(QChar(u));
    }
    values << everyAscii << QString() << QString("room 1") << QString("é€😀") << QString("a\u00e9\"")
           << QString(QChar(0xd800)) << QString(QString("x") + QChar(0xdc00)) << QJsonValue(42)
           << QJsonValue(-1.5) << QJsonValue(true) << QJsonValue(false) << QJsonValue()
           << QJsonValue(qint64(1) << 53);
    for (const QJsonValue &value : std::as_const(values)) {
        QCOMPARE(Protocol::toJsonUtf8(value), viaDocument(value));
        QCOMPARE(Protocol::toJsonText(value), QString::fromUtf8(viaDocument(value)));
    }
    const QJsonObject object{ { "b", "\u0001" }, { "a", QJsonArray{ 1, "z" } } };
    QCOMPARE(Protocol::toJsonUtf8(object), QJsonDocument(object).toJson(QJsonDocument::Compact));
    QCOMPARE(Protocol::toJsonText(QJsonValue(QJsonValue::Undefined)), QString("null"));
}

// replyFrame() assembles the frame around the encoded result: the same text as the object.
void tst_Codec::replyFrameIsTheEncodedObject()
{
    const QList<QJsonValue> results{ QJsonValue(),        QJsonValue(7),
                                     QJsonValue("t\"xt"), QJsonObject{ { "n", 1 }, { "a", "é" } },
                                     QJsonArray{ 1, 2 },  QJsonValue(QJsonValue::Undefined) };
    for (const qint64 id : { qint64(0), qint64(12), (qint64(1) << 53) - 1 }) {
        for (const QJsonValue &result : results) {
            QJsonObject frame{ { "op", "reply" }, { "id", id } };
            if (!result.isUndefined())
                frame.insert("result", result);
            QCOMPARE(Protocol::replyFrame(id, result), Protocol::encode(frame));
        }
    }
}

// An error answering a 60 KB op does not repeat it: names are cut to 64 characters, and never
// between the two halves of a surrogate pair.
void tst_Codec::errorMessagesQuoteNamesShort()
{
    QCOMPARE(Protocol::quotedName("chat"), QString("\"chat\""));
    const QString long64(64, u'a');
    QCOMPARE(Protocol::quotedName(long64), '"' + long64 + '"');
    QCOMPARE(Protocol::quotedName(long64 + "b"), '"' + long64 + QStringLiteral(u"\u2026\""));
    const QString emoji = QString(63, u'a') + QString::fromUtf8("\xF0\x9F\x98\x80") + "b";
    QCOMPARE(Protocol::quotedName(emoji), '"' + QString(63, u'a') + QStringLiteral(u"\u2026\""));

    const QByteArray frame = R"({"op":")" + QByteArray(60000, 'x') + R"(","id":1})";
    const auto decoded = Protocol::decodeClientFrame(frame);
    const auto *error = std::get_if<Protocol::FrameError>(&decoded);
    QVERIFY(error);
    QCOMPARE(error->code, Protocol::ErrorCode::UnknownOp);
    QVERIFY(error->message.size() < 100);
}

QTEST_GUILESS_MAIN(tst_Codec)
#include "tst_codec.moc"
