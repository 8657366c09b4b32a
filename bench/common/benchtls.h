// The TLS set-up of the Qt benchmark servers: --tls-certificate FILE --tls-key FILE.
#pragma once

#include <QtCore/QCommandLineOption>
#include <QtCore/QCommandLineParser>
#include <QtCore/QFile>
#include <QtCore/QString>
#include <QtNetwork/QSslCertificate>
#include <QtNetwork/QSslConfiguration>
#include <QtNetwork/QSslKey>

#include <optional>

namespace QtNotifBench {

struct TlsOptions
{
    QCommandLineOption certificate{ QStringLiteral("tls-certificate"),
                                    QStringLiteral("Serve wss:// with this PEM certificate "
                                                   "(and --tls-key)."),
                                    QStringLiteral("file") };
    QCommandLineOption key{ QStringLiteral("tls-key"),
                            QStringLiteral("The PEM private key (EC or RSA) of --tls-certificate."),
                            QStringLiteral("file") };

    // Qt's default TLS configuration with the certificate chain and private key of the files
    // given, in tls (std::nullopt when neither option is given). False, with error, when only
    // one is given or either cannot be read.
    bool read(const QCommandLineParser &parser, std::optional<QSslConfiguration> &tls,
              QString &error) const
    {
        tls.reset();
        if (parser.isSet(certificate) != parser.isSet(key)) {
            error = QStringLiteral("--tls-certificate and --tls-key go together");
            return false;
        }
        if (!parser.isSet(certificate))
            return true;
        const QList<QSslCertificate> chain = QSslCertificate::fromPath(parser.value(certificate));
        QFile keyFile(parser.value(key));
        QSslKey privateKey;
        if (!chain.isEmpty() && keyFile.open(QIODevice::ReadOnly)) {
            const QByteArray pem = keyFile.readAll();
            privateKey = QSslKey(pem, QSsl::Ec);
            if (privateKey.isNull())
                privateKey = QSslKey(pem, QSsl::Rsa);
        }
        if (privateKey.isNull()) {
            error = QStringLiteral("--tls-certificate, --tls-key: cannot read the certificate or "
                                   "the key");
            return false;
        }
        QSslConfiguration configuration = QSslConfiguration::defaultConfiguration();
        configuration.setLocalCertificateChain(chain);
        configuration.setPrivateKey(privateKey);
        tls = configuration;
        return true;
    }
};

} // namespace QtNotifBench
