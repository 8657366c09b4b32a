// A latency histogram of fixed size: log-linear buckets, 128 per power of two, so that every
// recorded value is known within 1/128 (< 1 %) of itself. Recording is a few instructions and
// never allocates, which a sample array at a million values per second would.
#pragma once

#include <QtCore/QJsonObject>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace QtNotifBench {

class Histogram
{
public:
    // Records one value (µs); negative values count as 0.
    void record(int64_t value)
    {
        const uint64_t v = value < 0 ? 0 : uint64_t(value);
        ++m_buckets[indexOf(v)];
        ++m_count;
        m_sum += double(v);
        m_max = std::max(m_max, v);
    }

    uint64_t count() const { return m_count; }

    // The value below which the fraction q (0..1) of the recorded values lie: the middle of
    // its bucket.
    double quantile(double q) const
    {
        if (m_count == 0)
            return 0;
        const uint64_t rank = std::max<uint64_t>(1, uint64_t(q * double(m_count) + 0.5));
        uint64_t seen = 0;
        for (size_t i = 0; i < m_buckets.size(); ++i) {
            seen += m_buckets[i];
            if (seen >= rank)
                return std::min(middleOf(i), double(m_max));
        }
        return double(m_max);
    }

    // {count, mean, p50, p90, p99, p999, max}, as the other benchmarks of bench/ write them.
    QJsonObject toJson() const
    {
        using namespace Qt::StringLiterals;
        return QJsonObject{
            { u"count"_s, qint64(m_count) }, { u"mean"_s, m_count ? m_sum / double(m_count) : 0.0 },
            { u"p50"_s, quantile(0.5) },     { u"p90"_s, quantile(0.9) },
            { u"p99"_s, quantile(0.99) },    { u"p999"_s, quantile(0.999) },
            { u"max"_s, qint64(m_max) },
        };
    }

private:
    static constexpr int SubBits = 7; // 128 buckets per power of two: < 1 % error
    static constexpr int Sub = 1 << SubBits;

    static size_t indexOf(uint64_t v)
    {
        if (v < Sub)
            return size_t(v);
        const int exponent = 63 - std::countl_zero(v);
        const uint64_t sub = (v >> (exponent - SubBits)) & (Sub - 1);
        return size_t(exponent - SubBits + 1) * Sub + size_t(sub);
    }

    static double middleOf(size_t index)
    {
        if (index < Sub)
            return double(index);
        const int exponent = int(index / Sub) + SubBits - 1;
        const uint64_t sub = index % Sub;
        const double low = double((uint64_t(Sub) + sub) << (exponent - SubBits));
        const double width = double(uint64_t(1) << (exponent - SubBits));
        return low + width / 2;
    }

    std::array<uint64_t, (64 - SubBits + 1) * Sub> m_buckets{};
    uint64_t m_count = 0;
    double m_sum = 0;
    uint64_t m_max = 0;
};

} // namespace QtNotifBench
