// The chat demo's Qt Widgets window, over a ChatDemo::ChatSession.
#pragma once

#include "chatsession.h"

#include <QtCore/QHash>
#include <QtCore/QList>
#include <QtCore/QString>
#include <QtCore/QVariantMap>
#include <QtWidgets/QMainWindow>

QT_BEGIN_NAMESPACE
class QLabel;
class QLineEdit;
class QListWidget;
class QListWidgetItem;
class QPushButton;
QT_END_NAMESPACE

namespace ChatDemo {

// A chat window: the rooms on the left, the current room's messages, typing indicator and
// input line in the middle, its members on the right, the connection state in the status bar.
//
// The widgets have stable object names, for tests that drive the window with findChild():
// "rooms", "joinButton", "messages", "typing", "input", "members" and, in the status bar,
// "state". Each item of "messages" is one message, "from: text" (system messages are their
// text alone, in italics; messages mentioning this user are bold), with the message map as
// its Qt::UserRole data.
//
// The window does not own the session, which must outlive it. It lives in the GUI thread.
class ChatWindow : public QMainWindow
{
    Q_OBJECT
public:
    explicit ChatWindow(ChatSession *session, QWidget *parent = nullptr);
    ~ChatWindow() override;

    ChatSession *session() const;
    // The room whose messages are shown; joined or not (a room left or removed from keeps
    // showing until another is chosen). Empty when none.
    QString currentRoom() const;

public Q_SLOTS:
    // Shows room (selecting it in "rooms") without joining it.
    void setCurrentRoom(const QString &room);
    // Joins room if needed and shows it.
    void joinRoom(const QString &room);
    // Leaves room and forgets what the window showed of it.
    void leaveRoom(const QString &room);

private:
    void updateRooms();
    void updateState();
    void updateRoomControls();
    void showMessages();
    void showMembers();
    void showTypists();
    void appendMessage(const QString &room, const QVariantMap &message);
    void addMessageItem(const QVariantMap &message);
    void submitInput();
    void showMemberMenu(const QPoint &position);

    ChatSession *m_session;
    QString m_currentRoom;
    // What each room showed so far, in order: its messages and the window's own notices.
    QHash<QString, QList<QVariantMap>> m_messages;

    QListWidget *m_rooms;
    QPushButton *m_joinButton;
    QLabel *m_roomTitle;
    QListWidget *m_messageList;
    QLabel *m_typing;
    QLineEdit *m_input;
    QListWidget *m_members;
    QLabel *m_state;
};

} // namespace ChatDemo
