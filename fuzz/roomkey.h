// The key type of the fuzzer's "room" notifier: a Q_GADGET, so that listens to it go through
// the gadget codec (jsonToGadget()).
#pragma once

#include <QtCore/QMetaType>
#include <QtCore/QString>

struct RoomKey
{
    Q_GADGET
    Q_PROPERTY(QString name MEMBER name)
    Q_PROPERTY(int level MEMBER level)
public:
    QString name;
    int level = 0;
};
