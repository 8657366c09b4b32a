// Value codecs: how keys and notifications, ordinary C++ types, travel as JSON.
#pragma once

#include <QtNotif/qtnotif_protocol_export.h>

#include <QtCore/QJsonArray>
#include <QtCore/QJsonObject>
#include <QtCore/QJsonValue>
#include <QtCore/QList>
#include <QtCore/QMap>
#include <QtCore/QMetaProperty>
#include <QtCore/QString>
#include <QtCore/QVariant>

#include <concepts>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

namespace QtNotif {

// A type declared with Q_GADGET: encoded as a JSON object of its properties.
template<typename T>
concept Gadget = requires
{
    typename T::QtGadgetHelper;
};

// Converts a QVariant to JSON; Q_GADGET values (also nested in lists and maps) become objects
// of their properties. Types JSON cannot hold become null.
QTNOTIF_PROTOCOL_EXPORT QJsonValue variantToJson(const QVariant &value);

// Converts JSON to a QVariant of the given type, Q_GADGET types included. Returns std::nullopt
// when the JSON does not have the shape of that type (a string for an int, say).
QTNOTIF_PROTOCOL_EXPORT std::optional<QVariant> jsonToVariant(const QJsonValue &json,
                                                              QMetaType type);

// Writes the JSON object's fields into the gadget's properties; fields the gadget does not
// have are ignored, properties the JSON lacks keep their value. Returns false on a type error.
QTNOTIF_PROTOCOL_EXPORT bool jsonToGadget(const QJsonObject &json, const QMetaObject &metaObject,
                                          void *gadget);
QTNOTIF_PROTOCOL_EXPORT QJsonObject gadgetToJson(const QMetaObject &metaObject, const void *gadget);

// Codec<T>::encode(value) -> QJsonValue and Codec<T>::decode(json) -> std::optional<T>.
// Provided for QString, bool, integers, floating point, QJsonValue/Object/Array, QVariant,
// QList<T>, QMap<QString, T> (so QStringList, QVariantList, QVariantMap), std::optional<T>,
// enums (as their underlying integer) and Q_GADGET types. Specialise it for other types.
template<typename T>
struct Codec;

template<>
struct Codec<QString>
{
    static QJsonValue encode(const QString &value) { return value; }
    static std::optional<QString> decode(const QJsonValue &json)
    {
        if (!json.isString())
            return std::nullopt;
        return json.toString();
    }
};

template<>
struct Codec<bool>
{
    static QJsonValue encode(bool value) { return value; }
    static std::optional<bool> decode(const QJsonValue &json)
    {
        if (!json.isBool())
            return std::nullopt;
        return json.toBool();
    }
};

template<std::integral T>
requires(!std::same_as<T, bool>) struct Codec<T>
{
    static QJsonValue encode(T value) { return QJsonValue(qint64(value)); }
    static std::optional<T> decode(const QJsonValue &json)
    {
        // toInteger() answers its default for anything that is not a whole number in range of
        // qint64: two different defaults tell that case apart from a real value.
        const qint64 a = json.toInteger(0);
        const qint64 b = json.toInteger(1);
        if (a != b || !std::in_range<T>(a))
            return std::nullopt;
        return T(a);
    }
};

template<std::floating_point T>
struct Codec<T>
{
    static QJsonValue encode(T value) { return double(value); }
    static std::optional<T> decode(const QJsonValue &json)
    {
        if (!json.isDouble())
            return std::nullopt;
        // JSON numbers are finite doubles; one beyond a float's range has no float value.
        const double value = json.toDouble();
        if (value > double(std::numeric_limits<T>::max())
            || value < double(std::numeric_limits<T>::lowest()))
            return std::nullopt;
        return T(value);
    }
};

template<typename T>
requires std::is_enum_v<T>
struct Codec<T>
{
    using Underlying = std::underlying_type_t<T>;
    static QJsonValue encode(T value) { return Codec<Underlying>::encode(Underlying(value)); }
    static std::optional<T> decode(const QJsonValue &json)
    {
        if (const auto v = Codec<Underlying>::decode(json))
            return T(*v);
        return std::nullopt;
    }
};

template<>
struct Codec<QJsonValue>
{
    static QJsonValue encode(const QJsonValue &value) { return value; }
    static std::optional<QJsonValue> decode(const QJsonValue &json) { return json; }
};

template<>
struct Codec<QJsonObject>
{
    static QJsonValue encode(const QJsonObject &value) { return value; }
    static std::optional<QJsonObject> decode(const QJsonValue &json)
    {
        if (!json.isObject())
            return std::nullopt;
        return json.toObject();
    }
};

template<>
struct Codec<QJsonArray>
{
    static QJsonValue encode(const QJsonArray &value) { return value; }
    static std::optional<QJsonArray> decode(const QJsonValue &json)
    {
        if (!json.isArray())
            return std::nullopt;
        return json.toArray();
    }
};

template<>
struct Codec<QVariant>
{
    static QJsonValue encode(const QVariant &value) { return variantToJson(value); }
    static std::optional<QVariant> decode(const QJsonValue &json) { return json.toVariant(); }
};

template<typename T>
struct Codec<std::optional<T>>
{
    static QJsonValue encode(const std::optional<T> &value)
    {
        return value ? Codec<T>::encode(*value) : QJsonValue(QJsonValue::Null);
    }
    static std::optional<std::optional<T>> decode(const QJsonValue &json)
    {
        if (json.isNull() || json.isUndefined()) // decoded: an empty optional
            return std::optional<std::optional<T>>(std::in_place, std::nullopt);
        if (auto v = Codec<T>::decode(json))
            return std::optional<std::optional<T>>(std::in_place, std::move(*v));
        return std::nullopt;
    }
};

template<typename T>
struct Codec<QList<T>>
{
    static QJsonValue encode(const QList<T> &value)
    {
        QJsonArray array;
        for (const T &item : value)
            array.append(Codec<T>::encode(item));
        return array;
    }
    static std::optional<QList<T>> decode(const QJsonValue &json)
    {
        if (!json.isArray())
            return std::nullopt;
        const QJsonArray array = json.toArray();
        QList<T> result;
        result.reserve(array.size());
        for (const QJsonValue &item : array) {
            auto v = Codec<T>::decode(item);
            if (!v)
                return std::nullopt;
            result.append(std::move(*v));
        }
        return result;
    }
};

template<typename T>
struct Codec<QMap<QString, T>>
{
    static QJsonValue encode(const QMap<QString, T> &value)
    {
        QJsonObject object;
        for (auto it = value.cbegin(); it != value.cend(); ++it)
            object.insert(it.key(), Codec<T>::encode(it.value()));
        return object;
    }
    static std::optional<QMap<QString, T>> decode(const QJsonValue &json)
    {
        if (!json.isObject())
            return std::nullopt;
        const QJsonObject object = json.toObject();
        QMap<QString, T> result;
        for (auto it = object.begin(); it != object.end(); ++it) {
            auto v = Codec<T>::decode(it.value());
            if (!v)
                return std::nullopt;
            result.insert(it.key(), std::move(*v));
        }
        return result;
    }
};

template<Gadget T>
struct Codec<T>
{
    static QJsonValue encode(const T &value) { return gadgetToJson(T::staticMetaObject, &value); }
    static std::optional<T> decode(const QJsonValue &json)
    {
        if (!json.isObject())
            return std::nullopt;
        T value{};
        if (!jsonToGadget(json.toObject(), T::staticMetaObject, &value))
            return std::nullopt;
        return value;
    }
};

// True when Codec<T> exists: the static_asserts in the notifier templates use it to say
// plainly which type lacks a codec.
template<typename T>
concept Encodable = requires(const T &value, const QJsonValue &json)
{
    {
        Codec<T>::encode(value)
        } -> std::convertible_to<QJsonValue>;
    {
        Codec<T>::decode(json)
        } -> std::same_as<std::optional<T>>;
};

} // namespace QtNotif
