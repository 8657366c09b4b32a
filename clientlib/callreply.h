#pragma once

#include <QtNotif/qtnotif_client_export.h>

#include <QtCore/QJsonValue>
#include <QtCore/QObject>
#include <QtCore/QString>

#include <memory>

namespace QtNotif {

class CallReplyPrivate;

// The answer to one upstream call (Client::call()): a result, or an error code and message.
//
// Error codes are the server's ("unknown_method", "no_reply", a handler's own "forbidden", ...)
// or the client library's: "not_connected", "connection_lost", "timeout" (see
// Protocol::ErrorCode). The Client owns the reply and deletes it (deleteLater) once finished()
// has been emitted; it lives in the Client's thread.
class QTNOTIF_CLIENT_EXPORT CallReply : public QObject
{
    Q_OBJECT
    Q_PROPERTY(QString method READ method CONSTANT)
    Q_PROPERTY(QJsonValue result READ result NOTIFY finished)
    Q_PROPERTY(QString errorCode READ errorCode NOTIFY finished)
    Q_PROPERTY(QString errorMessage READ errorMessage NOTIFY finished)
public:
    ~CallReply() override;

    // The method called.
    QString method() const;
    // Whether the answer (or a client-side error) has arrived; finished() was emitted then.
    bool isFinished() const;
    // Whether the call failed: errorCode() is then not empty.
    bool isError() const;
    // The handler's result; null until finished and on error.
    QJsonValue result() const;
    // The error code; empty on success.
    QString errorCode() const;
    // The error message for people; empty on success.
    QString errorMessage() const;

Q_SIGNALS:
    // Emitted once, always asynchronously after Client::call() returned.
    void finished();

private:
    friend class ClientPrivate;
    CallReply(const QString &method, QObject *parent);
    // Records the outcome, emits finished() and schedules deletion; later calls do nothing.
    void finish(const QJsonValue &result, const QString &errorCode, const QString &errorMessage);

    std::unique_ptr<CallReplyPrivate> d;
};

} // namespace QtNotif
