// Basic types of the server library.
#pragma once

#include <QtNotif/qtnotif_server_export.h>

#include <QtCore/QtGlobal>

namespace QtNotif {

// Identifies one client connection for the server's lifetime; never reused. 0 is no connection.
using ConnectionId = quint64;

} // namespace QtNotif
