import QtQuick
import QtTest
import QtNotif

// NotificationModel collecting one key of a Notifier, as a ListView would show it.
TestCase {
    id: test
    name: "NotificationModel"

    Client {
        id: client
        url: testServer.url
        active: true
    }
    Notifier {
        id: chat
        client: client
        name: "chat"
        keys: ["lobby", "other"]
    }
    NotificationModel {
        id: model
        notifier: chat
        key: "lobby"
        capacity: 3
    }
    Repeater {
        id: view
        model: model
        delegate: Item {
            property string line: from + ": " + text
            property var whole: notif
        }
    }

    function initTestCase() {
        tryVerify(() => testServer.listenerCount("chat", "lobby") === 1
                  && testServer.listenerCount("chat", "other") === 1)
    }

    function init() {
        model.clear()
    }

    function test_eventsOfItsKeyBecomeRows() {
        testServer.notify("chat", "other", { from: "x", text: "not this key" })
        testServer.notify("chat", "lobby", { from: "alice", text: "hello" })
        tryCompare(model, "count", 1)
        compare(model.get(0).from, "alice")
        compare(model.roles, ["from", "text"]) // learned from the first notification
        compare(view.count, 1)
        compare(view.itemAt(0).line, "alice: hello")
        compare(view.itemAt(0).whole.text, "hello")
    }

    function test_boundedNewestLast() {
        for (let n = 1; n <= 5; ++n)
            testServer.notify("chat", "lobby", { from: "bot", text: "n" + n })
        tryVerify(() => model.count === 3 && model.get(2).text === "n5")
        compare(model.get(0).text, "n3")
        compare(view.count, 3)
        compare(view.itemAt(0).line, "bot: n3")
        model.capacity = 1
        compare(model.count, 1)
        compare(model.get(0).text, "n5")
        model.capacity = 3
    }

    function test_appendAndClear() {
        model.append({ from: "me", text: "my own message" })
        compare(model.count, 1)
        compare(view.itemAt(0).line, "me: my own message")
        model.clear()
        compare(model.count, 0)
        compare(view.count, 0)
        compare(model.get(0), undefined)
    }

    function test_changingTheKeyClears() {
        testServer.notify("chat", "lobby", { from: "a", text: "b" })
        tryCompare(model, "count", 1)
        model.key = "other"
        compare(model.count, 0)
        testServer.notify("chat", "other", { from: "c", text: "d" })
        tryCompare(model, "count", 1)
        compare(model.get(0).from, "c")
        model.key = "lobby"
    }
}
