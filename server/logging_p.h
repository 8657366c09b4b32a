#pragma once

#include <QtCore/QLoggingCategory>

namespace QtNotif {
// "qtnotif.server": connections, refusals, protocol errors (info and up by default).
Q_DECLARE_LOGGING_CATEGORY(lcServer)
} // namespace QtNotif
