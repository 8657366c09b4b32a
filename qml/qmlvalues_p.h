// Conversions between what QML passes and what the client library takes.
#pragma once

#include <QtNotif/codec.h>
#include <QtNotif/protocol.h>

#include <QtCore/QLoggingCategory>
#include <QtCore/QVariant>
#include <QtQml/QJSValue>

namespace QtNotif {

// "qtnotif.qml": JavaScript callbacks that threw, values that could not be used.
Q_DECLARE_LOGGING_CATEGORY(lcQml)

// A value from QML as a plain QVariant: JavaScript objects and arrays may arrive wrapped in a
// QJSValue, which the codecs do not know; they become QVariantMap and QVariantList.
QVariant plainVariant(const QVariant &value);

// The canonical text of a key given from QML, to compare keys by value.
inline QString canonicalQmlKey(const QVariant &key)
{
    return Protocol::canonicalKey(variantToJson(plainVariant(key)));
}

} // namespace QtNotif
