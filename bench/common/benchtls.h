// The TLS set-up of the Qt benchmark servers (--tls-certificate FILE --tls-key FILE).
#pragma once

#include <QtCore/QFile>
#include <QtCore/QString>
#include <QtNetwork/QSslCertificate>
#include <QtNetwork/QSslConfiguration>
#include <QtNetwork/QSslKey>

#include <optional>

namespace QtNotifBench {

// Qt's default TLS configuration with the certificate chain and private key (EC or RSA) of
// these PEM files; std::nullopt when either cannot be read.
inline std::optional<QSslConfiguration> tlsConfiguration(const QString &certificatePath,
                                                         const QString &keyPath)
{
    const QList<QSslCertificate> chain = QSslCertificate::fromPath(certificatePath);
    QFile keyFile(keyPath);
    if (chain.isEmpty() || !keyFile.open(QIODevice::ReadOnly))
        return std::nullopt;
    const QByteArray pem = keyFile.readAll();
    QSslKey key(pem, QSsl::Ec);
    if (key.isNull())
        key = QSslKey(pem, QSsl::Rsa);
    if (key.isNull())
        return std::nullopt;
    QSslConfiguration configuration = QSslConfiguration::defaultConfiguration();
    configuration.setLocalCertificateChain(chain);
    configuration.setPrivateKey(key);
    return configuration;
}

} // namespace QtNotifBench
