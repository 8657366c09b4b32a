// The chat demo's QML window: qtnotif-chat-qml --url ws://127.0.0.1:8080 --user bob [--room lobby]
#include "windowoptions.h"

#include <QtGui/QGuiApplication>
#include <QtQml/QQmlApplicationEngine>
#include <QtQml/QQmlExtensionPlugin>

// The ChatDemo module is linked in statically (ChatWindow.qml in its resources).
Q_IMPORT_QML_PLUGIN(ChatDemoPlugin)

using namespace Qt::StringLiterals;

int main(int argc, char *argv[])
{
    QGuiApplication app(argc, argv);
    QCoreApplication::setApplicationName(u"qtnotif-chat-qml"_s);

    const ChatDemo::WindowOptions options = ChatDemo::parseWindowOptions(
            app, u"The qtnotif chat demo's QML window."_s, u"Who to log in as."_s);
    if (options.user.isEmpty()) {
        qCritical("--user is required");
        return 2;
    }

    QQmlApplicationEngine engine;
    // The build tree's QML modules, where `import QtNotif` finds the module.
    engine.addImportPath(QStringLiteral(QTNOTIF_QML_IMPORT_DIR));
    engine.setInitialProperties({ { u"serverUrl"_s, QUrl(options.url) },
                                  { u"user"_s, options.user },
                                  { u"initialRoom"_s, options.room },
                                  { u"sayOnJoin"_s, options.say } });
    QObject::connect(
            &engine, &QQmlApplicationEngine::objectCreationFailed, &app,
            [] { QCoreApplication::exit(1); }, Qt::QueuedConnection);
    engine.load(QUrl(u"qrc:/ChatDemo/ChatWindow.qml"_s));
    return app.exec();
}
