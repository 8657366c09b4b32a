#include "chatwindow.h"

#include <QtCore/QDateTime>
#include <QtCore/QLocale>
#include <QtGui/QAction>
#include <QtGui/QBrush>
#include <QtGui/QColor>
#include <QtGui/QFont>
#include <QtWidgets/QLabel>
#include <QtWidgets/QLineEdit>
#include <QtWidgets/QListWidget>
#include <QtWidgets/QMenu>
#include <QtWidgets/QPushButton>
#include <QtWidgets/QSplitter>
#include <QtWidgets/QStatusBar>
#include <QtWidgets/QVBoxLayout>

using namespace Qt::StringLiterals;

namespace ChatDemo {

namespace {

// A notice of the window itself (not from the server), shown among the messages of a room.
const QString NoticeKind = u"notice"_s;

void setBold(QWidget *widget)
{
    QFont font = widget->font();
    font.setBold(true);
    widget->setFont(font);
}

// A column of the window: widgets one over the other, the first one a caption.
QWidget *column(const QList<QWidget *> &widgets)
{
    auto *widget = new QWidget;
    auto *layout = new QVBoxLayout(widget);
    layout->setContentsMargins(0, 0, 0, 0);
    setBold(widgets.first());
    for (QWidget *child : widgets)
        layout->addWidget(child);
    return widget;
}

} // namespace

ChatWindow::ChatWindow(ChatSession *session, QWidget *parent)
    : QMainWindow(parent), m_session(session), m_rooms(new QListWidget),
      m_joinButton(new QPushButton), m_roomTitle(new QLabel), m_messageList(new QListWidget),
      m_typing(new QLabel), m_input(new QLineEdit), m_members(new QListWidget), m_state(new QLabel)
{
    Q_ASSERT(session);
    setWindowTitle(tr("qtnotif chat: %1").arg(session->userName()));

    m_rooms->setObjectName(u"rooms"_s);
    m_rooms->setToolTip(tr("Double-click a room to join it"));
    m_joinButton->setObjectName(u"joinButton"_s);
    m_roomTitle->setObjectName(u"roomTitle"_s);
    m_messageList->setObjectName(u"messages"_s);
    m_messageList->setWordWrap(true);
    m_messageList->setSelectionMode(QAbstractItemView::NoSelection);
    m_typing->setObjectName(u"typing"_s);
    m_input->setObjectName(u"input"_s);
    m_input->setPlaceholderText(tr("Say something, or /kick, /block, /unblock a name"));
    m_members->setObjectName(u"members"_s);
    m_members->setContextMenuPolicy(Qt::CustomContextMenu);
    m_members->setToolTip(tr("Right-click a member to block them"));
    m_state->setObjectName(u"state"_s);

    auto *splitter = new QSplitter;
    splitter->addWidget(column({ new QLabel(tr("Rooms")), m_rooms, m_joinButton }));
    splitter->addWidget(column({ m_roomTitle, m_messageList, m_typing, m_input }));
    splitter->addWidget(column({ new QLabel(tr("Members")), m_members }));
    splitter->setStretchFactor(1, 1);
    splitter->setSizes({ 150, 450, 150 });
    setCentralWidget(splitter);
    statusBar()->addPermanentWidget(m_state);
    resize(800, 500);

    connect(m_rooms, &QListWidget::currentTextChanged, this, &ChatWindow::setCurrentRoom);
    connect(m_rooms, &QListWidget::itemDoubleClicked, this,
            [this](QListWidgetItem *item) { joinRoom(item->text()); });
    connect(m_joinButton, &QPushButton::clicked, this, [this] {
        if (m_session->isJoined(m_currentRoom))
            leaveRoom(m_currentRoom);
        else
            joinRoom(m_currentRoom);
    });
    connect(m_input, &QLineEdit::returnPressed, this, &ChatWindow::submitInput);
    connect(m_input, &QLineEdit::textEdited, this, [this](const QString &text) {
        // Commands are not chat: typing one is not announced.
        m_session->setTyping(m_currentRoom, !text.isEmpty() && !text.startsWith(u'/'));
    });
    connect(m_members, &QListWidget::customContextMenuRequested, this, &ChatWindow::showMemberMenu);

    connect(session, &ChatSession::stateChanged, this, &ChatWindow::updateState);
    connect(session, &ChatSession::moderatorChanged, this, &ChatWindow::updateState);
    connect(session, &ChatSession::roomsChanged, this, &ChatWindow::updateRooms);
    connect(session, &ChatSession::joinedRoomsChanged, this, &ChatWindow::updateRooms);
    connect(session, &ChatSession::messageReceived, this, &ChatWindow::appendMessage);
    connect(session, &ChatSession::membersChanged, this, [this](const QString &room) {
        if (room == m_currentRoom)
            showMembers();
    });
    connect(session, &ChatSession::blockedUsersChanged, this, &ChatWindow::showMembers);
    connect(session, &ChatSession::typingChanged, this, [this](const QString &room) {
        if (room == m_currentRoom)
            showTypists();
    });
    connect(session, &ChatSession::removedFromRoom, this, [this](const QString &room) {
        const QString notice = tr("You were removed from %1 by a moderator.").arg(room);
        appendMessage(room, { { u"kind"_s, NoticeKind }, { u"text"_s, notice } });
        statusBar()->showMessage(notice);
    });
    connect(session, &ChatSession::errorOccurred, this,
            [this](const QString &message) { statusBar()->showMessage(message, 10000); });

    updateState();
    updateRooms();
    const QStringList joined = session->joinedRooms();
    setCurrentRoom(joined.isEmpty() ? QString() : joined.first());
}

ChatWindow::~ChatWindow() = default;

ChatSession *ChatWindow::session() const
{
    return m_session;
}

QString ChatWindow::currentRoom() const
{
    return m_currentRoom;
}

void ChatWindow::setCurrentRoom(const QString &room)
{
    if (room != m_currentRoom) {
        // Stop announcing typing in the room left behind.
        m_session->setTyping(m_currentRoom, false);
        m_currentRoom = room;
        showMessages();
        showMembers();
        showTypists();
    }
    // The item may come later, with the server's room list: updateRooms() selects it then.
    const QList<QListWidgetItem *> items = m_rooms->findItems(room, Qt::MatchExactly);
    if (!items.isEmpty() && m_rooms->currentItem() != items.first())
        m_rooms->setCurrentItem(items.first());
    updateRoomControls();
}

void ChatWindow::joinRoom(const QString &room)
{
    if (room.isEmpty())
        return;
    if (!m_session->isJoined(room)) {
        // Start afresh: the join reports the room's history again.
        m_messages.remove(room);
        if (room == m_currentRoom)
            showMessages();
        m_session->join(room);
    }
    setCurrentRoom(room);
    m_input->setFocus();
}

void ChatWindow::leaveRoom(const QString &room)
{
    m_session->leave(room);
    m_messages.remove(room);
    if (room == m_currentRoom) {
        showMessages();
        showMembers();
        showTypists();
    }
}

void ChatWindow::updateRooms()
{
    // The server's rooms, and any other room joined (rooms are only keys to the server).
    QStringList rooms = m_session->rooms();
    const QStringList joined = m_session->joinedRooms();
    for (const QString &room : joined) {
        if (!rooms.contains(room))
            rooms.append(room);
    }

    const QSignalBlocker blocker(m_rooms); // rebuilding is not the user choosing a room
    m_rooms->clear();
    for (const QString &room : std::as_const(rooms)) {
        auto *item = new QListWidgetItem(room, m_rooms);
        QFont font = item->font();
        font.setBold(joined.contains(room));
        item->setFont(font);
        item->setToolTip(joined.contains(room) ? tr("Joined") : tr("Double-click to join"));
        if (room == m_currentRoom)
            m_rooms->setCurrentItem(item);
    }
    updateRoomControls();
}

void ChatWindow::updateState()
{
    switch (m_session->state()) {
    case ChatSession::State::Disconnected:
        m_state->setText(tr("Disconnected"));
        break;
    case ChatSession::State::Connecting:
        m_state->setText(tr("Connecting to %1...").arg(m_session->url().toString()));
        break;
    case ChatSession::State::Connected:
        m_state->setText(m_session->isModerator()
                                 ? tr("Connected as %1 (moderator)").arg(m_session->userName())
                                 : tr("Connected as %1").arg(m_session->userName()));
        break;
    case ChatSession::State::Reconnecting:
        m_state->setText(tr("Reconnecting to %1...").arg(m_session->url().toString()));
        break;
    }
    updateRoomControls();
}

void ChatWindow::updateRoomControls()
{
    const bool joined = m_session->isJoined(m_currentRoom);
    m_joinButton->setText(joined ? tr("Leave") : tr("Join"));
    m_joinButton->setEnabled(!m_currentRoom.isEmpty());
    m_roomTitle->setText(m_currentRoom.isEmpty() ? tr("No room")
                         : joined                ? m_currentRoom
                                                 : tr("%1 (not joined)").arg(m_currentRoom));
    // Disabling keeps what was typed: it can be sent once connected again.
    m_input->setEnabled(joined && m_session->state() == ChatSession::State::Connected);
}

void ChatWindow::showMessages()
{
    m_messageList->clear();
    const QList<QVariantMap> messages = m_messages.value(m_currentRoom);
    for (const QVariantMap &message : messages)
        addMessageItem(message);
    m_messageList->scrollToBottom();
}

void ChatWindow::showMembers()
{
    m_members->clear();
    const QStringList members = m_session->members(m_currentRoom);
    for (const QString &member : members) {
        auto *item = new QListWidgetItem(member, m_members);
        QFont font = item->font();
        font.setBold(member == m_session->userName());
        font.setStrikeOut(m_session->isBlocked(member));
        item->setFont(font);
        if (m_session->isBlocked(member))
            item->setToolTip(tr("Blocked: you do not see their messages"));
    }
}

void ChatWindow::showTypists()
{
    const QStringList typists = m_session->typists(m_currentRoom);
    switch (typists.size()) {
    case 0:
        m_typing->clear();
        break;
    case 1:
        m_typing->setText(tr("%1 is typing...").arg(typists.first()));
        break;
    case 2:
        m_typing->setText(tr("%1 and %2 are typing...").arg(typists.at(0), typists.at(1)));
        break;
    default:
        m_typing->setText(tr("Several people are typing..."));
        break;
    }
}

void ChatWindow::appendMessage(const QString &room, const QVariantMap &message)
{
    m_messages[room].append(message);
    if (room != m_currentRoom)
        return;
    addMessageItem(message);
    m_messageList->scrollToBottom();
}

void ChatWindow::addMessageItem(const QVariantMap &message)
{
    const QString kind = message.value(u"kind"_s).toString();
    const QString text = message.value(u"text"_s).toString();
    const bool ordinary = kind == u"message"_s;
    auto *item = new QListWidgetItem(ordinary ? message.value(u"from"_s).toString() + u": "_s + text
                                              : text);
    item->setData(Qt::UserRole, message);

    QFont font = item->font();
    if (!ordinary) {
        font.setItalic(true);
        item->setForeground(kind == NoticeKind ? QBrush(Qt::darkRed) : QBrush(Qt::darkGray));
    } else if (message.value(u"mentionsMe"_s).toBool()) {
        font.setBold(true);
        item->setBackground(QColor(255, 244, 196)); // a light yellow marker
    }
    item->setFont(font);
    const QDateTime time
            = QDateTime::fromString(message.value(u"time"_s).toString(), Qt::ISODateWithMs);
    if (time.isValid())
        item->setToolTip(QLocale().toString(time.toLocalTime(), QLocale::ShortFormat));
    m_messageList->addItem(item);
}

void ChatWindow::submitInput()
{
    // A wrong command stays in the input to be fixed; the status bar says what is wrong.
    if (m_session->submit(m_currentRoom, m_input->text()))
        m_input->clear();
}

void ChatWindow::showMemberMenu(const QPoint &position)
{
    const QListWidgetItem *item = m_members->itemAt(position);
    if (!item || item->text() == m_session->userName())
        return;
    const QString user = item->text();
    const QString room = m_currentRoom;

    QMenu menu;
    const bool blocked = m_session->isBlocked(user);
    menu.addAction(blocked ? tr("Unblock %1").arg(user) : tr("Block %1").arg(user), this,
                   [this, user, blocked] { m_session->setBlocked(user, !blocked); });
    if (m_session->isModerator()) {
        menu.addAction(tr("Remove %1 from %2").arg(user, room), this,
                       [this, user, room] { m_session->kick(room, user); });
    }
    menu.exec(m_members->viewport()->mapToGlobal(position));
}

} // namespace ChatDemo
