#include "qmlclient.h"

#include "qmlvalues_p.h"

#include <QtNotif/callreply.h>

#include <QtNetwork/QSslCertificate>
#include <QtNetwork/QSslConfiguration>
#include <QtQml/QJSEngine>

namespace QtNotif {

QmlClient::QmlClient(QObject *parent) : Client(parent)
{
    // A URL bound after the component completed (from a login form, say) opens it then.
    connect(this, &Client::urlChanged, this, &QmlClient::openIfWanted);
}

void QmlClient::setActive(bool active)
{
    if (m_active == active)
        return;
    m_active = active;
    if (active)
        openIfWanted();
    else if (m_complete)
        close();
    Q_EMIT activeChanged();
}

void QmlClient::setCaCertificates(const QUrl &file)
{
    if (m_caCertificates == file)
        return;
    m_caCertificates = file;
    // QML sets nothing else of the TLS configuration: Qt's default, with these CAs if any.
    QSslConfiguration tls = QSslConfiguration::defaultConfiguration();
    if (!file.isEmpty()) {
        const QString path = file.scheme() == u"qrc" ? u':' + file.path()
                             : file.isLocalFile()    ? file.toLocalFile()
                                                     : file.toString();
        const QList<QSslCertificate> certificates = QSslCertificate::fromPath(path);
        if (certificates.isEmpty()) {
            qCWarning(lcQml) << "no PEM certificate in" << file
                             << "(caCertificates): no wss:// server will be trusted";
        }
        tls.setCaCertificates(certificates);
    }
    setSslConfiguration(tls);
    Q_EMIT caCertificatesChanged();
}

void QmlClient::componentComplete()
{
    m_complete = true;
    openIfWanted();
}

void QmlClient::openIfWanted()
{
    if (m_complete && m_active && !url().isEmpty())
        open(); // does nothing unless Disconnected
}

void QmlClient::call(const QString &method, const QJSValue &payload, const QJSValue &callback)
{
    CallReply *reply = Client::call(method, variantToJson(plainVariant(payload.toVariant())));
    if (!callback.isCallable())
        return;
    connect(reply, &CallReply::finished, this, [this, reply, callback] {
        QJSEngine *engine = qjsEngine(this);
        if (!engine)
            return; // the engine is being torn down
        QJSValue answer = engine->newObject();
        answer.setProperty(QStringLiteral("ok"), !reply->isError());
        answer.setProperty(QStringLiteral("result"),
                           engine->toScriptValue(reply->result().toVariant()));
        answer.setProperty(QStringLiteral("errorCode"), reply->errorCode());
        answer.setProperty(QStringLiteral("errorMessage"), reply->errorMessage());
        const QJSValue thrown = QJSValue(callback).call({ answer });
        if (thrown.isError()) {
            qCWarning(lcQml).noquote()
                    << "the callback of call" << reply->method() << "threw:" << thrown.toString();
        }
    });
}

} // namespace QtNotif
