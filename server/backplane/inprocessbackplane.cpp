#include "inprocessbackplane_p.h"

#include <QtCore/QHash>
#include <QtCore/QList>
#include <QtCore/QMutex>
#include <QtCore/QSet>

#include <atomic>

namespace QtNotif {

// The members of one inproc:// name and their subscriptions, shared across threads.
class InProcessBus
{
public:
    struct Member
    {
        InProcessBackplane *backplane;
        QSet<QByteArray> channels;
    };

    QMutex mutex;
    QList<Member> members; // guarded by mutex
    std::atomic<int> size{ 0 };

    Member *find(const InProcessBackplane *backplane)
    {
        for (Member &member : members) {
            if (member.backplane == backplane)
                return &member;
        }
        return nullptr;
    }
};

namespace {

// Named buses, alive while they have members.
struct Buses
{
    QMutex mutex;
    QHash<QString, std::weak_ptr<InProcessBus>> byName;
};

Buses &buses()
{
    static Buses instance;
    return instance;
}

std::shared_ptr<InProcessBus> busNamed(const QString &name)
{
    if (name.isEmpty())
        return std::make_shared<InProcessBus>();
    Buses &all = buses();
    QMutexLocker locker(&all.mutex);
    std::shared_ptr<InProcessBus> bus = all.byName.value(name).lock();
    if (!bus) {
        bus = std::make_shared<InProcessBus>();
        all.byName.insert(name, bus);
    }
    return bus;
}

} // namespace

std::unique_ptr<Backplane> InProcessBackplane::create(const QUrl &url, QString *errorString)
{
    Q_UNUSED(errorString);
    // inproc://name puts the name in the host part, which QUrl lower-cases; the path keeps
    // inproc:///Name as written.
    QString name = url.host() + url.path();
    return std::unique_ptr<Backplane>(new InProcessBackplane(url, busNamed(name)));
}

InProcessBackplane::InProcessBackplane(const QUrl &url, std::shared_ptr<InProcessBus> bus)
    : Backplane(url), m_bus(std::move(bus))
{
}

InProcessBackplane::~InProcessBackplane()
{
    QMutexLocker locker(&m_bus->mutex);
    m_bus->members.removeIf(
            [this](const InProcessBus::Member &member) { return member.backplane == this; });
    m_bus->size = int(m_bus->members.size());
}

bool InProcessBackplane::reachesOtherNodes() const
{
    return m_bus->size.load(std::memory_order_relaxed) > 1;
}

void InProcessBackplane::doStart()
{
    {
        QMutexLocker locker(&m_bus->mutex);
        if (!m_bus->find(this))
            m_bus->members.append({ this, channels() });
        m_bus->size = int(m_bus->members.size());
    }
    setStatus(Status::Online);
    const QSet<QByteArray> all = channels();
    for (const QByteArray &channel : all)
        subscriptionConfirmed(channel);
}

void InProcessBackplane::doSubscribe(const QByteArray &channel)
{
    {
        QMutexLocker locker(&m_bus->mutex);
        if (InProcessBus::Member *member = m_bus->find(this))
            member->channels.insert(channel);
    }
    subscriptionConfirmed(channel); // in place as soon as the bus has it
}

void InProcessBackplane::doUnsubscribe(const QByteArray &channel)
{
    QMutexLocker locker(&m_bus->mutex);
    if (InProcessBus::Member *member = m_bus->find(this))
        member->channels.remove(channel);
}

bool InProcessBackplane::doPublish(const QByteArray &channel, const QByteArray &message, Sent sent)
{
    int receivers = 0;
    {
        // Posting under the lock: a member deleted meanwhile first waits for the lock, and its
        // QObject destructor then discards what was posted to it.
        QMutexLocker locker(&m_bus->mutex);
        for (const InProcessBus::Member &member : std::as_const(m_bus->members)) {
            if (!member.channels.contains(channel))
                continue;
            ++receivers;
            InProcessBackplane *target = member.backplane;
            QMetaObject::invokeMethod(
                    target, [target, channel, message] { target->received(channel, message); },
                    Qt::QueuedConnection);
        }
    }
    if (sent) {
        QMetaObject::invokeMethod(
                this, [sent = std::move(sent), receivers] { sent(receivers); },
                Qt::QueuedConnection);
    }
    return true;
}

} // namespace QtNotif
