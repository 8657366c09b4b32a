// The chat demo's QML window: qtnotif-chat-qml --url ws://127.0.0.1:8080 --user bob [--room lobby]
#include <QtCore/QCommandLineParser>
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

    QCommandLineParser parser;
    parser.setApplicationDescription(u"The qtnotif chat demo's QML window."_s);
    parser.addHelpOption();
    const QCommandLineOption urlOption(u"url"_s, u"The chat server."_s, u"url"_s,
                                       u"ws://127.0.0.1:8080"_s);
    const QCommandLineOption userOption(u"user"_s, u"Who to log in as."_s, u"name"_s);
    const QCommandLineOption roomOption(u"room"_s, u"The room to join first."_s, u"room"_s,
                                        u"lobby"_s);
    const QCommandLineOption sayOption(
            u"say"_s, u"A message to send once the room is shown (repeatable; for screenshots)."_s,
            u"text"_s);
    parser.addOptions({ urlOption, userOption, roomOption, sayOption });
    parser.process(app);
    if (!parser.isSet(userOption)) {
        qCritical("--user is required");
        return 2;
    }

    QQmlApplicationEngine engine;
    // The build tree's QML modules, where `import QtNotif` finds the module.
    engine.addImportPath(QStringLiteral(QTNOTIF_QML_IMPORT_DIR));
    engine.setInitialProperties({ { u"serverUrl"_s, QUrl(parser.value(urlOption)) },
                                  { u"user"_s, parser.value(userOption) },
                                  { u"initialRoom"_s, parser.value(roomOption) },
                                  { u"sayOnJoin"_s, parser.values(sayOption) } });
    QObject::connect(
            &engine, &QQmlApplicationEngine::objectCreationFailed, &app,
            [] { QCoreApplication::exit(1); }, Qt::QueuedConnection);
    engine.load(QUrl(u"qrc:/ChatDemo/ChatWindow.qml"_s));
    return app.exec();
}
