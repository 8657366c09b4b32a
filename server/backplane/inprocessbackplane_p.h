#pragma once

#include <QtNotif/backplane.h>

#include <memory>

namespace QtNotif {

class InProcessBus;

// Backplane between the servers of one process: inproc://name joins the bus of that name,
// made by its first member. Members may live on different threads; messages reach them
// through their event loops, as they would from a network.
class InProcessBackplane : public Backplane
{
    Q_OBJECT
public:
    // inproc://name; an empty name makes a bus of its own (a server alone: the default).
    static std::unique_ptr<Backplane> create(const QUrl &url, QString *errorString);
    ~InProcessBackplane() override;

    bool reachesOtherNodes() const override;

protected:
    void doStart() override;
    void doSubscribe(const QByteArray &channel) override;
    void doUnsubscribe(const QByteArray &channel) override;
    bool doPublish(const QByteArray &channel, const QByteArray &message, Sent sent) override;

private:
    InProcessBackplane(const QUrl &url, std::shared_ptr<InProcessBus> bus);

    std::shared_ptr<InProcessBus> m_bus;
};

} // namespace QtNotif
