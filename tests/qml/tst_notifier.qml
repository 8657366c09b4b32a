import QtQuick
import QtTest
import QtNotif

// Client and Notifier against the real server of testserver.h (the context property testServer).
TestCase {
    id: test
    name: "Notifier"

    Component {
        id: clientComponent
        Client {
            url: testServer.url
            active: true
        }
    }
    Component {
        id: notifierComponent
        Notifier {
            name: "chat"
        }
    }
    Component {
        id: spyComponent
        SignalSpy {}
    }

    function init() {
        testServer.reset()
    }

    function connectedClient(token) {
        const client = createTemporaryObject(clientComponent, test, { token: token || "" })
        tryCompare(client, "state", Client.Connected)
        return client
    }

    function spy(target, signalName) {
        return createTemporaryObject(spyComponent, test, { target: target, signalName: signalName })
    }

    function listeners(key, notifierName) {
        return testServer.listenerCount(notifierName || "chat", key)
    }

    function test_connectsWithItsIdentity() {
        const client = connectedClient("alice")
        compare(client.userId, "alice")
        compare(client.identity.user, "alice")
        verify(client.connectionId !== "")
        compare(client.error, Client.NoError)
    }

    function test_activeWaitsForTheUrl() {
        const client = createTemporaryObject(clientComponent, test, { url: "" })
        compare(client.state, Client.Disconnected) // active, but nowhere to go yet
        client.url = testServer.url
        tryCompare(client, "state", Client.Connected)
        compare(client.error, Client.NoError)
    }

    function test_declarativeListenAndEvents() {
        const client = connectedClient("alice")
        const notifier = createTemporaryObject(notifierComponent, test,
                                               { client: client, keys: ["lobby"] })
        const events = spy(notifier, "clientEvent")
        tryVerify(() => listeners("lobby") === 1)
        testServer.notify("chat", "lobby", { from: "bob", text: "hi" })
        testServer.notify("chat", "elsewhere", { text: "not for us" })
        tryCompare(events, "count", 1)
        compare(events.signalArguments[0][0], "lobby")
        compare(events.signalArguments[0][1].from, "bob")
        compare(events.signalArguments[0][1].text, "hi")
    }

    function test_keyListChangesListenAndUnlisten() {
        const client = connectedClient()
        const notifier = createTemporaryObject(notifierComponent, test,
                                               { client: client, keys: ["a", "b"] })
        tryVerify(() => listeners("a") === 1 && listeners("b") === 1)
        notifier.keys = ["b", "c"]
        tryVerify(() => listeners("a") === 0 && listeners("c") === 1)
        compare(listeners("b"), 1)
        notifier.keys = []
        tryVerify(() => listeners("b") === 0 && listeners("c") === 0)
    }

    function test_keysBeforeTheClientConnects() {
        const client = createTemporaryObject(clientComponent, test, { active: false })
        const notifier = createTemporaryObject(notifierComponent, test,
                                               { client: client, keys: ["early"] })
        compare(client.state, Client.Disconnected)
        client.active = true
        tryVerify(() => listeners("early") === 1)
        client.active = false
        compare(client.state, Client.Disconnected)
        tryVerify(() => listeners("early") === 0)
    }

    function test_objectKeysCompareByValue() {
        const client = connectedClient()
        const notifier = createTemporaryObject(notifierComponent, test,
                                               { client: client, keys: [{ doc: 7, part: "body" }] })
        const events = spy(notifier, "clientEvent")
        tryVerify(() => listeners({ part: "body", doc: 7 }) === 1)
        testServer.notify("chat", { part: "body", doc: 7 }, "edited")
        tryCompare(events, "count", 1)
        compare(events.signalArguments[0][0].doc, 7)
        compare(events.signalArguments[0][1], "edited")
    }

    function test_elementsShareKeys() {
        const client = connectedClient()
        const first = createTemporaryObject(notifierComponent, test, { client: client, keys: ["a"] })
        const second = createTemporaryObject(notifierComponent, test,
                                             { client: client, keys: ["a", "b"] })
        const firstEvents = spy(first, "clientEvent")
        tryVerify(() => listeners("a") === 1 && listeners("b") === 1)
        second.keys = ["b"]
        // first still wants "a": it stays listened, and events for "b" are not first's.
        testServer.notify("chat", "b", "to b")
        testServer.notify("chat", "a", "to a")
        tryCompare(firstEvents, "count", 1)
        compare(firstEvents.signalArguments[0][1], "to a")
        compare(listeners("a"), 1)
        first.destroy()
        tryVerify(() => listeners("a") === 0)
        compare(listeners("b"), 1)
    }

    function test_listenDenied() {
        const client = connectedClient()
        const notifier = createTemporaryObject(notifierComponent, test,
                                               { client: client, keys: ["forbidden", "fine"] })
        const failed = spy(notifier, "listenFailed")
        tryCompare(failed, "count", 1)
        compare(failed.signalArguments[0][0], "forbidden")
        compare(failed.signalArguments[0][1], "listen_denied")
        tryVerify(() => listeners("fine") === 1)
    }

    function test_unlistenedByTheServer() {
        const client = connectedClient("bob")
        const notifier = createTemporaryObject(notifierComponent, test,
                                               { client: client, keys: ["room"] })
        const unlistened = spy(notifier, "unlistened")
        tryVerify(() => listeners("room") === 1)
        compare(testServer.unlistenUser("bob", "chat", "room"), 1)
        tryCompare(unlistened, "count", 1)
        compare(unlistened.signalArguments[0][0], "room")
        compare(unlistened.signalArguments[0][1], "user")
        // Listening again is the application's choice: take the key out and put it back.
        notifier.keys = []
        notifier.keys = ["room"]
        tryVerify(() => listeners("room") === 1)
    }

    function test_reconnectsAndListensAgain() {
        const client = connectedClient("carol")
        const notifier = createTemporaryObject(notifierComponent, test,
                                               { client: client, keys: ["room"] })
        const states = spy(client, "stateChanged")
        tryVerify(() => listeners("room") === 1)
        testServer.restart()
        tryVerify(() => states.signalArguments.some(args => args[0] === Client.Reconnecting))
        tryCompare(client, "state", Client.Connected, 10000)
        tryVerify(() => listeners("room") === 1)
        compare(client.userId, "carol")
        const events = spy(notifier, "clientEvent")
        testServer.notify("chat", "room", "after the restart")
        tryCompare(events, "count", 1)
    }

    // A binding gives the client its fresh token: it reconnects and listens again, and the keys
    // never change.
    function test_tokenExpiredThenRenewedByABinding() {
        const session = createTemporaryQmlObject(
                "import QtQml; QtObject { property string token: 'alice+300' }", test)
        const client = createTemporaryObject(clientComponent, test,
                                             { token: Qt.binding(() => session.token) })
        const notifier = createTemporaryObject(notifierComponent, test,
                                               { client: client, keys: ["lobby"] })
        const expired = spy(client, "tokenExpired")
        const keysChanged = spy(notifier, "keysChanged")
        tryCompare(client, "state", Client.Connected)
        tryVerify(() => listeners("lobby") === 1)
        tryCompare(expired, "count", 1)
        compare(client.error, Client.TokenExpired)
        compare(client.state, Client.Reconnecting)
        session.token = "alice"
        tryCompare(client, "state", Client.Connected)
        tryVerify(() => listeners("lobby") === 1)
        compare(notifier.keys, ["lobby"])
        compare(keysChanged.count, 0)
        compare(client.userId, "alice")
    }

    function test_callWithCallback() {
        const client = connectedClient()
        const notifier = createTemporaryObject(notifierComponent, test, { client: client })
        let answer = null
        notifier.call("echo", { text: "hi", n: [1, 2] }, reply => answer = reply)
        tryVerify(() => answer !== null)
        verify(answer.ok)
        compare(answer.result.text, "hi")
        compare(answer.result.n[1], 2)
        compare(answer.errorCode, "")

        let failure = null
        client.call("missing", null, reply => failure = reply)
        tryVerify(() => failure !== null)
        verify(!failure.ok)
        compare(failure.errorCode, "unknown_method")
        verify(failure.errorMessage.length > 0)
    }
}
