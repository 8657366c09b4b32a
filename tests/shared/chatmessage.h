// A Q_GADGET notification type for tests: the built-in codec turns it into a JSON object.
#pragma once

#include <QtCore/QObject>
#include <QtCore/QString>

struct ChatMessage
{
    Q_GADGET
    Q_PROPERTY(QString from MEMBER from)
    Q_PROPERTY(QString text MEMBER text)
public:
    QString from;
    QString text;
};
