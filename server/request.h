#pragma once

#include <QtNotif/codec.h>
#include <QtNotif/identity.h>
#include <QtNotif/notfor.h>

#include <QtCore/QJsonValue>
#include <QtCore/QString>

#include <memory>

namespace QtNotif {

class Server;
class RequestState;

// One upstream request from a client (the op "request"), as its handler sees it: the calling
// client ("me"), its identity, the method and the payload, and the means to answer.
//
// Request is a cheap handle: copy it into a lambda to answer later (after a database call,
// say). Answer exactly once, with reply() or fail(); later answers are ignored. When the last
// copy goes away unanswered, the client gets the error "no_reply", so a forgotten answer
// never leaves a client waiting. Use it on the server's thread only.
class QTNOTIF_SERVER_EXPORT Request
{
public:
    ConnectionId connection() const;
    Identity identity() const;
    QString method() const;
    QJsonValue payload() const;
    // The payload decoded as T; std::nullopt when it does not have T's shape.
    template<typename T>
    std::optional<T> payloadAs() const
    {
        return Codec<T>::decode(payload());
    }

    // notFor "me": leaves the calling client out of a notify.
    NotFor me() const { return NotFor::connection(connection()); }

    // Sends the reply frame with this result. Does nothing when already answered or when the
    // client has gone.
    void reply(const QJsonValue &result = QJsonValue()) const;
    // Sends an error frame with an application code ("forbidden", "not_found", ...) and a
    // message for people.
    void fail(const QString &code, const QString &message) const;
    bool isAnswered() const;

private:
    friend class ServerPrivate;
    explicit Request(std::shared_ptr<RequestState> state) : d(std::move(state)) { }
    std::shared_ptr<RequestState> d;
};

// A handler of upstream requests, registered with Server::setHandler().
using Handler = std::function<void(const Request &request)>;

} // namespace QtNotif
