// The clocks the benchmark programs share.
#pragma once

#include <QtCore/QtGlobal>

#include <sys/resource.h>
#include <time.h>

namespace QtNotifBench {

// Microseconds of CLOCK_MONOTONIC. Every process of one machine reads the same clock (it counts
// from boot and NTP does not step it), so a stamp taken in the publisher and one taken in the
// subscriber subtract into a latency. Meaningless between machines.
inline qint64 monotonicMicroseconds()
{
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return qint64(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
}

// CPU time (user and system) this process has used so far, in microseconds.
inline qint64 processCpuMicroseconds()
{
    rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (qint64(usage.ru_utime.tv_sec) + usage.ru_stime.tv_sec) * 1000000
           + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

} // namespace QtNotifBench
