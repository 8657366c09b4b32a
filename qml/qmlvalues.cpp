#include "qmlvalues_p.h"

namespace QtNotif {

Q_LOGGING_CATEGORY(lcQml, "qtnotif.qml", QtInfoMsg)

QVariant plainVariant(const QVariant &value)
{
    if (value.metaType() == QMetaType::fromType<QJSValue>())
        return value.value<QJSValue>().toVariant();
    if (value.metaType().id() == QMetaType::QVariantList) {
        QVariantList list = value.toList();
        for (QVariant &item : list)
            item = plainVariant(item);
        return list;
    }
    if (value.metaType().id() == QMetaType::QVariantMap) {
        QVariantMap map = value.toMap();
        for (QVariant &item : map)
            item = plainVariant(item);
        return map;
    }
    return value;
}

} // namespace QtNotif
