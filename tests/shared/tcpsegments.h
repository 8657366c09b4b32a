#pragma once

// The TCP segments with data a socket has received (Linux's TCP_INFO, tcpi_data_segs_in), or -1
// where it cannot tell. On loopback, a peer's write of a few KiB arrives as one segment, and
// TCP_NODELAY sends each write at once: the count is the number of writes that reached the
// socket, which tests of what the server writes together compare.
//
// <linux/tcp.h> has the count where <netinet/tcp.h> does not; a file includes one or the other.

#include <QtCore/qglobal.h>

#ifdef Q_OS_LINUX
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

inline int tcpDataSegmentsReceived(qintptr descriptor)
{
#ifdef Q_OS_LINUX
    tcp_info info = {};
    socklen_t size = sizeof info;
    if (::getsockopt(int(descriptor), IPPROTO_TCP, TCP_INFO, &info, &size) != 0
        || size < offsetof(tcp_info, tcpi_data_segs_in) + sizeof info.tcpi_data_segs_in) {
        return -1;
    }
    return int(info.tcpi_data_segs_in);
#else
    Q_UNUSED(descriptor);
    return -1;
#endif
}
