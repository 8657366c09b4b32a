#include "codec.h"

#include <QtCore/QMetaObject>
#include <QtCore/QMetaType>

namespace QtNotif {

namespace {

bool isGadgetType(QMetaType type)
{
    return type.isValid() && (type.flags() & QMetaType::IsGadget) && type.metaObject();
}

} // namespace

QJsonObject gadgetToJson(const QMetaObject &metaObject, const void *gadget)
{
    QJsonObject object;
    for (int i = 0; i < metaObject.propertyCount(); ++i) {
        const QMetaProperty property = metaObject.property(i);
        object.insert(QString::fromLatin1(property.name()),
                      variantToJson(property.readOnGadget(gadget)));
    }
    return object;
}

bool jsonToGadget(const QJsonObject &json, const QMetaObject &metaObject, void *gadget)
{
    for (int i = 0; i < metaObject.propertyCount(); ++i) {
        const QMetaProperty property = metaObject.property(i);
        const auto it = json.constFind(QLatin1String(property.name()));
        if (it == json.constEnd())
            continue;
        if (!property.isWritable())
            continue;
        const auto value = jsonToVariant(it.value(), property.metaType());
        if (!value || !property.writeOnGadget(gadget, *value))
            return false;
    }
    return true;
}

QJsonValue variantToJson(const QVariant &value)
{
    const QMetaType type = value.metaType();
    if (isGadgetType(type))
        return gadgetToJson(*type.metaObject(), value.constData());
    switch (type.id()) {
    case QMetaType::QVariantList: {
        QJsonArray array;
        for (const QVariant &item : value.toList())
            array.append(variantToJson(item));
        return array;
    }
    case QMetaType::QVariantMap: {
        QJsonObject object;
        const QVariantMap map = value.toMap();
        for (auto it = map.cbegin(); it != map.cend(); ++it)
            object.insert(it.key(), variantToJson(it.value()));
        return object;
    }
    case QMetaType::QVariantHash: {
        QJsonObject object;
        const QVariantHash hash = value.toHash();
        for (auto it = hash.cbegin(); it != hash.cend(); ++it)
            object.insert(it.key(), variantToJson(it.value()));
        return object;
    }
    default:
        return QJsonValue::fromVariant(value);
    }
}

std::optional<QVariant> jsonToVariant(const QJsonValue &json, QMetaType type)
{
    if (isGadgetType(type)) {
        if (!json.isObject())
            return std::nullopt;
        QVariant value(type);
        if (!jsonToGadget(json.toObject(), *type.metaObject(), value.data()))
            return std::nullopt;
        return value;
    }
    switch (type.id()) {
    case QMetaType::QVariant:
        return json.toVariant();
    case QMetaType::QString:
        if (!json.isString())
            return std::nullopt;
        return QVariant(json.toString());
    case QMetaType::Bool:
        if (!json.isBool())
            return std::nullopt;
        return QVariant(json.toBool());
    case QMetaType::QJsonValue:
        return QVariant(json);
    case QMetaType::QJsonObject:
        if (!json.isObject())
            return std::nullopt;
        return QVariant(json.toObject());
    case QMetaType::QJsonArray:
        if (!json.isArray())
            return std::nullopt;
        return QVariant(json.toArray());
    case QMetaType::QVariantMap:
    case QMetaType::QVariantHash:
        if (!json.isObject())
            return std::nullopt;
        break;
    case QMetaType::QVariantList:
    case QMetaType::QStringList:
        if (!json.isArray())
            return std::nullopt;
        break;
    case QMetaType::Int:
    case QMetaType::UInt:
    case QMetaType::LongLong:
    case QMetaType::ULongLong:
    case QMetaType::Short:
    case QMetaType::UShort:
    case QMetaType::Long:
    case QMetaType::ULong: {
        if (json.toInteger(0) != json.toInteger(1))
            return std::nullopt;
        QVariant value(json.toInteger());
        if (!value.convert(type))
            return std::nullopt;
        // convert() wraps out-of-range numbers; a round trip catches that.
        if (value.toLongLong() != json.toInteger())
            return std::nullopt;
        return value;
    }
    case QMetaType::Double:
    case QMetaType::Float:
        if (!json.isDouble())
            return std::nullopt;
        break;
    default:
        break;
    }
    QVariant value = json.toVariant();
    if (value.metaType() != type && !value.convert(type))
        return std::nullopt;
    return value;
}

} // namespace QtNotif
