// The command line both chat windows take (widgets and QML): --url, --user, --room, --say.
#pragma once

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QString>
#include <QtCore/QStringList>

namespace ChatDemo {

struct WindowOptions
{
    QString url;     // as given; ws://127.0.0.1:8080 by default
    QString user;    // empty when not given
    QString room;    // lobby by default
    QStringList say; // messages to send once the room is shown
};

// Parses the application's arguments (exits on --help or an unknown option, as
// QCommandLineParser::process() does). userHelp describes --user, which one window requires and
// the other asks for.
inline WindowOptions parseWindowOptions(const QCoreApplication &app, const QString &description,
                                        const QString &userHelp)
{
    using namespace Qt::StringLiterals;
    QCommandLineParser parser;
    parser.setApplicationDescription(description);
    parser.addHelpOption();
    const QCommandLineOption urlOption(u"url"_s, u"The chat server's URL."_s, u"url"_s,
                                       u"ws://127.0.0.1:8080"_s);
    const QCommandLineOption userOption(u"user"_s, userHelp, u"name"_s);
    const QCommandLineOption roomOption(u"room"_s, u"The room joined at start."_s, u"room"_s,
                                        u"lobby"_s);
    const QCommandLineOption sayOption(
            u"say"_s, u"A message to send once the room is shown (repeatable; for screenshots)."_s,
            u"text"_s);
    parser.addOptions({ urlOption, userOption, roomOption, sayOption });
    parser.process(app);
    return { parser.value(urlOption), parser.value(userOption), parser.value(roomOption),
             parser.values(sayOption) };
}

} // namespace ChatDemo
