import QtQuick
import QtQuick.Controls
import QtQuick.Layouts
import QtNotif

// The chat demo's QML window: everything it knows of the chat comes through the QtNotif module.
// A Client logs in with the upstream call "login", three Notifiers listen to the joined rooms
// (messages, typing, members), and a NotificationModel holds the messages of the room shown.
ApplicationWindow {
    id: window

    required property url serverUrl
    required property string user
    property string initialRoom: "lobby"
    // Messages sent once the first room's history is shown (--say, for screenshots).
    property var sayOnJoin: []

    // The chat state of this window.
    property bool loggedIn: false
    property bool moderator: client.identity.attributes ? client.identity.attributes.moderator === true : false
    property var rooms: []
    property var joinedRooms: []
    property string currentRoom: ""
    property var members: []
    property var typists: []
    property string notice: ""

    width: 720
    height: 480
    visible: true
    title: "qtnotif chat (QML) - " + user

    // init: connect anonymously, then log in on the live connection (the server changes this
    // connection's identity); the token makes later reconnections log in at the handshake.
    Client {
        id: client
        objectName: "client"
        url: window.serverUrl
        active: true
        // A token the server no longer accepts (a server with another secret, say): forget it,
        // reconnect anonymously and log in again; the joined rooms are listened again after.
        onErrorOccurred: error => {
            if (error !== Client.AuthenticationError)
                return
            window.loggedIn = false
            token = ""
            active = false
            active = true
        }
        onStateChanged: newState => {
            if (newState === Client.Connected && !window.loggedIn)
                window.logIn()
            else if (newState === Client.Connected)
                window.refresh()
        }
    }

    // listen: the keys are the joined rooms, once logged in (anonymous clients may not listen).
    Notifier {
        id: messages
        client: client
        name: "messages"
        keys: window.loggedIn ? window.joinedRooms : []
        onUnlistened: (room, reason) => {
            if (reason !== "user")
                return
            // A moderator removed this user from the room (unlistenUser on the server).
            window.notice = "You were removed from #" + room + " by a moderator."
            window.joinedRooms = window.joinedRooms.filter(r => r !== room)
            if (window.currentRoom === room)
                window.currentRoom = window.joinedRooms.length > 0 ? window.joinedRooms[0] : ""
        }
    }
    Notifier {
        id: typing
        client: client
        name: "typing"
        keys: window.loggedIn ? window.joinedRooms : []
        onClientEvent: (room, event) => {
            if (room !== window.currentRoom)
                return
            const others = window.typists.filter(name => name !== event.user)
            window.typists = event.typing ? others.concat([event.user]) : others
        }
    }
    Notifier {
        id: membersNotifier
        client: client
        name: "members"
        keys: window.loggedIn ? window.joinedRooms : []
        onClientEvent: (room, event) => {
            if (room === window.currentRoom)
                window.members = event.members
        }
    }
    NotificationModel {
        id: history
        objectName: "messagesModel"
        notifier: messages
        key: window.currentRoom
        capacity: 500
        roles: ["id", "room", "from", "text", "time", "kind", "mentionsMe"]
    }
    Timer {
        id: typingIdle
        interval: 3000
        onTriggered: window.setTyping(false)
    }

    function logIn() {
        client.call("login", { name: user }, reply => {
            if (!reply.ok) {
                notice = "Login refused: " + reply.errorMessage
                return
            }
            client.token = reply.result.token
            loggedIn = true
            client.call("rooms", null, r => { if (r.ok) rooms = r.result })
            if (joinedRooms.length === 0 && initialRoom !== "")
                join(initialRoom)
            else
                refresh()
        })
    }

    // What a notification cannot tell: the messages sent before this window listened, and the
    // members present. Asked again after every (re)connection.
    function refresh() {
        if (currentRoom === "")
            return
        const room = currentRoom
        client.call("history", { room: room }, reply => {
            if (!reply.ok || room !== currentRoom)
                return
            history.clear()
            for (const message of reply.result)
                history.append(message)
            const said = sayOnJoin
            sayOnJoin = []
            for (const text of said)
                send(text)
        })
        client.call("members", { room: room }, reply => {
            if (reply.ok && room === currentRoom)
                members = reply.result
        })
    }

    function join(room) {
        if (!joinedRooms.includes(room))
            joinedRooms = joinedRooms.concat([room])
        show(room)
    }

    function leave(room) {
        joinedRooms = joinedRooms.filter(r => r !== room)
        if (currentRoom === room)
            show(joinedRooms.length > 0 ? joinedRooms[0] : "")
    }

    function show(room) {
        currentRoom = room
        typists = []
        members = []
        refresh()
    }

    function send(text) {
        if (text.startsWith("/"))
            return command(text)
        const room = currentRoom
        client.call("send", { room: room, text: text }, reply => {
            if (!reply.ok) {
                notice = reply.errorMessage
                return
            }
            // The server sends a message to everyone in the room but its sender (notFor me):
            // the sender shows its own message itself.
            if (room === currentRoom)
                history.append({ id: reply.result.id, room: room, from: user, text: text,
                                 time: reply.result.time, kind: "message", mentionsMe: false })
        })
        typingIdle.stop()
        typingSent = false
    }

    function command(text) {
        const parts = text.trim().split(/\s+/)
        const target = parts.length > 1 ? parts[1] : ""
        if (parts[0] === "/kick")
            kick(target)
        else if (parts[0] === "/block")
            block(target, true)
        else if (parts[0] === "/unblock")
            block(target, false)
        else
            notice = "Unknown command " + parts[0] + " (try /kick, /block, /unblock)"
    }

    function block(name, blocked) {
        client.call("block", { user: name, blocked: blocked }, reply => {
            notice = reply.ok ? (blocked ? "Blocked " : "Unblocked ") + name : reply.errorMessage
        })
    }

    function kick(name) {
        client.call("kick", { room: currentRoom, user: name }, reply => {
            notice = reply.ok ? "Removed " + name + " from #" + currentRoom : reply.errorMessage
        })
    }

    // "typing" true at most every 2 s while keys are pressed, false after 3 s without.
    property bool typingSent: false
    property double lastTypingSent: 0
    function edited() {
        if (!typingSent || Date.now() - lastTypingSent > 2000)
            setTyping(true)
        typingIdle.restart()
    }
    function setTyping(on) {
        if (currentRoom === "")
            return
        typingSent = on
        lastTypingSent = Date.now()
        client.call("typing", { room: currentRoom, typing: on }, null)
    }

    header: ToolBar {
        RowLayout {
            anchors.fill: parent
            Label {
                text: "#" + window.currentRoom
                font.bold: true
                Layout.leftMargin: 8
            }
            Label {
                objectName: "notice"
                text: window.notice
                color: "firebrick"
                elide: Text.ElideRight
                Layout.fillWidth: true
            }
        }
    }

    footer: Label {
        objectName: "state"
        padding: 4
        text: {
            switch (client.state) {
            case Client.Connected: return "Connected as " + (client.userId || "guest")
            case Client.Connecting: return "Connecting to " + client.url
            case Client.Reconnecting: return "Reconnecting... (" + client.errorString + ")"
            default: return "Disconnected" + (client.errorString ? ": " + client.errorString : "")
            }
        }
    }

    RowLayout {
        anchors.fill: parent
        anchors.margins: 6
        spacing: 6

        ColumnLayout {
            Layout.preferredWidth: 170
            Layout.maximumWidth: 170
            Layout.fillHeight: true
            Label { text: "Rooms"; font.bold: true }
            ListView {
                objectName: "rooms"
                model: window.rooms
                Layout.fillWidth: true
                Layout.preferredHeight: 120
                delegate: ItemDelegate {
                    width: ListView.view.width
                    text: (window.joinedRooms.includes(modelData) ? "● " : "○ ") + "#" + modelData
                    highlighted: modelData === window.currentRoom
                    onClicked: window.joinedRooms.includes(modelData) ? window.show(modelData)
                                                                       : window.join(modelData)
                    onPressAndHold: window.leave(modelData)
                }
            }
            Button {
                text: "Leave #" + window.currentRoom
                enabled: window.currentRoom !== ""
                onClicked: window.leave(window.currentRoom)
            }
            Label { text: "In this room"; font.bold: true }
            ListView {
                objectName: "members"
                model: window.members
                Layout.fillWidth: true
                Layout.fillHeight: true
                delegate: ItemDelegate {
                    width: ListView.view.width
                    text: modelData + (modelData === window.user ? " (you)" : "")
                    onClicked: memberMenu.popup()
                    Menu {
                        id: memberMenu
                        MenuItem { text: "Block"; onTriggered: window.block(modelData, true) }
                        MenuItem { text: "Unblock"; onTriggered: window.block(modelData, false) }
                        MenuItem {
                            text: "Remove from room"
                            enabled: window.moderator
                            onTriggered: window.kick(modelData)
                        }
                    }
                }
            }
        }

        ColumnLayout {
            Layout.fillWidth: true
            Layout.fillHeight: true
            ListView {
                id: messageView
                objectName: "messages"
                model: history
                clip: true
                Layout.fillWidth: true
                Layout.fillHeight: true
                onCountChanged: positionViewAtEnd()
                delegate: Label {
                    width: ListView.view.width
                    wrapMode: Text.Wrap
                    // Roles through `model.`: `text` alone would be the Label's own property.
                    text: model.kind === "system" ? model.text : model.from + ": " + model.text
                    font.italic: model.kind === "system"
                    font.bold: model.mentionsMe === true
                    color: model.mentionsMe === true ? "darkorange" : palette.text
                }
            }
            Label {
                objectName: "typing"
                text: window.typists.length === 0 ? ""
                      : window.typists.join(", ") + (window.typists.length === 1 ? " is" : " are") + " typing..."
                font.italic: true
            }
            TextField {
                objectName: "input"
                Layout.fillWidth: true
                enabled: window.currentRoom !== "" && client.state === Client.Connected
                placeholderText: "Message #" + window.currentRoom + " (/kick, /block, /unblock)"
                onTextEdited: window.edited()
                onAccepted: {
                    if (text.trim() !== "")
                        window.send(text.trim())
                    text = ""
                }
            }
        }
    }
}
