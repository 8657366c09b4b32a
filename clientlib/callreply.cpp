#include <QtNotif/callreply.h>

namespace QtNotif {

class CallReplyPrivate
{
public:
    QString method;
    QJsonValue result;
    QString errorCode;
    QString errorMessage;
    bool finished = false;
};

CallReply::CallReply(const QString &method, QObject *parent)
    : QObject(parent), d(std::make_unique<CallReplyPrivate>())
{
    d->method = method;
}

CallReply::~CallReply() = default;

QString CallReply::method() const
{
    return d->method;
}

bool CallReply::isFinished() const
{
    return d->finished;
}

bool CallReply::isError() const
{
    return !d->errorCode.isEmpty();
}

QJsonValue CallReply::result() const
{
    return d->result;
}

QString CallReply::errorCode() const
{
    return d->errorCode;
}

QString CallReply::errorMessage() const
{
    return d->errorMessage;
}

void CallReply::finish(const QJsonValue &result, const QString &errorCode,
                       const QString &errorMessage)
{
    if (d->finished)
        return;
    d->finished = true;
    d->result = result;
    d->errorCode = errorCode;
    d->errorMessage = errorMessage;
    Q_EMIT finished();
    deleteLater();
}

} // namespace QtNotif
