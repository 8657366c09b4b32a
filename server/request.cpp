#include <QtNotif/request.h>

#include "server_p.h"

#include <QtNotif/protocol.h>

namespace QtNotif {

using namespace Protocol;

RequestState::~RequestState()
{
    if (!answered) {
        answer(errorFrame(ErrorCode::NoReply,
                          QStringLiteral("the handler of \"%1\" did not answer").arg(method), id));
    }
}

void RequestState::answer(const QString &frame)
{
    answered = true;
    if (!server)
        return;
    if (Connection *c = server->d->connection(connection))
        server->d->send(*c, frame);
}

ConnectionId Request::connection() const
{
    return d->connection;
}

Identity Request::identity() const
{
    return d->identity;
}

QString Request::method() const
{
    return d->method;
}

QJsonValue Request::payload() const
{
    return d->payload;
}

void Request::reply(const QJsonValue &result) const
{
    if (!d->answered)
        d->answer(replyFrame(d->id, result));
}

void Request::fail(const QString &code, const QString &message) const
{
    if (!d->answered)
        d->answer(errorFrame(code, message, d->id));
}

bool Request::isAnswered() const
{
    return d->answered;
}

} // namespace QtNotif
