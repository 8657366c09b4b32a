// Runs the tst_*.qml files of this folder (QUICK_TEST_SOURCE_DIR) with the build tree's QtNotif
// module and a TestServer, which the tests reach as the context property testServer.
#include "testserver.h"

#include <QtQml/QQmlContext>
#include <QtQml/QQmlEngine>
#include <QtQuickTest/quicktest.h>

class Setup : public QObject
{
    Q_OBJECT
public Q_SLOTS:
    void qmlEngineAvailable(QQmlEngine *engine)
    {
        engine->addImportPath(QStringLiteral(QTNOTIF_QML_IMPORT_DIR));
        if (!m_server) // made here: the application exists by now, not when Setup is built
            m_server = std::make_unique<TestServer>();
        engine->rootContext()->setContextProperty(QStringLiteral("testServer"), m_server.get());
    }

    // Before the application goes: the server's sockets and timers need it.
    void cleanupTestCase() { m_server.reset(); }

private:
    std::unique_ptr<TestServer> m_server;
};

QUICK_TEST_MAIN_WITH_SETUP(qml, Setup)

#include "tst_qml.moc"
