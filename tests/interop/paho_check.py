"""Interop checks with Eclipse Paho (paho-mqtt 2.x, MQTT 5), driven by the
Rust suite (tests/all/paho.rs) against a real Sluice node.

Usage: paho_check.py CHECK HOST PORT; exits 0 when the check holds, 1 with a
message otherwise. Every wait is bounded.
"""

import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

WAIT_S = 10


def client(client_id, clean_start=True, expiry=None):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.connected = threading.Event()
    c.session_present = None
    c.received = []
    c.got = threading.Condition()

    def on_connect(cl, userdata, flags, reason_code, properties):
        cl.session_present = flags.session_present
        cl.connack_reason = reason_code
        cl.connected.set()

    def on_message(cl, userdata, msg):
        with cl.got:
            cl.received.append(msg)
            cl.got.notify_all()

    c.on_connect = on_connect
    c.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    if expiry is not None:
        props.SessionExpiryInterval = expiry
    c.connect(HOST, PORT, keepalive=30, clean_start=clean_start, properties=props)
    c.loop_start()
    if not c.connected.wait(WAIT_S):
        fail(f"{client_id}: no CONNACK")
    return c


def wait_for(c, n):
    deadline = time.time() + WAIT_S
    with c.got:
        while len(c.received) < n and time.time() < deadline:
            c.got.wait(0.2)
    return list(c.received)


def subscribe(c, topic, qos=1):
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.subscribe(topic, qos)
    if not done.wait(WAIT_S):
        fail(f"no SUBACK for {topic}")


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def check_props():
    sub = client("paho-props-sub")
    subscribe(sub, "paho/props/#")
    pub = client("paho-props-pub")
    p = Properties(PacketTypes.PUBLISH)
    p.UserProperty = [("origin", "paho"), ("n", "1")]
    p.ContentType = "application/json"
    p.ResponseTopic = "paho/replies"
    p.CorrelationData = b"\x01\x02\x03"
    p.MessageExpiryInterval = 300
    p.PayloadFormatIndicator = 1
    pub.publish("paho/props/x", b'{"a":1}', qos=1, properties=p).wait_for_publish(WAIT_S)
    got = wait_for(sub, 1)
    if len(got) != 1:
        fail(f"expected 1 message, got {len(got)}")
    m = got[0].properties
    if getattr(m, "UserProperty", None) != [("origin", "paho"), ("n", "1")]:
        fail(f"user properties: {getattr(m, 'UserProperty', None)}")
    if m.ContentType != "application/json" or m.ResponseTopic != "paho/replies":
        fail("content type / response topic")
    if m.CorrelationData != b"\x01\x02\x03" or m.PayloadFormatIndicator != 1:
        fail("correlation data / payload format")
    if not (250 <= m.MessageExpiryInterval <= 300):
        fail(f"remaining expiry {m.MessageExpiryInterval}")


def check_shared():
    a = client("paho-shared-a")
    b = client("paho-shared-b")
    subscribe(a, "$share/workers/paho/jobs")
    subscribe(b, "$share/workers/paho/jobs")
    pub = client("paho-shared-pub")
    for i in range(20):
        pub.publish("paho/jobs", f"job-{i}".encode(), qos=1).wait_for_publish(WAIT_S)
    deadline = time.time() + WAIT_S
    while len(a.received) + len(b.received) < 20 and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    jobs = sorted(m.payload.decode() for m in a.received + b.received)
    if jobs != sorted(f"job-{i}" for i in range(20)):
        fail(f"each job exactly once, got {jobs}")
    if not a.received or not b.received:
        fail(f"both members get work: {len(a.received)} / {len(b.received)}")


def check_alias():
    sub = client("paho-alias-sub")
    subscribe(sub, "paho/alias/#")
    pub = client("paho-alias-pub")
    first = Properties(PacketTypes.PUBLISH)
    first.TopicAlias = 1
    pub.publish("paho/alias/long/topic/name", b"one", qos=1, properties=first).wait_for_publish(WAIT_S)
    again = Properties(PacketTypes.PUBLISH)
    again.TopicAlias = 1
    pub.publish("", b"two", qos=1, properties=again).wait_for_publish(WAIT_S)
    got = wait_for(sub, 2)
    if [(m.topic, m.payload) for m in got] != [("paho/alias/long/topic/name", b"one"), ("paho/alias/long/topic/name", b"two")]:
        fail(f"aliases resolved: {[(m.topic, m.payload) for m in got]}")


def check_session_start():
    c = client("paho-durable", clean_start=True, expiry=600)
    subscribe(c, "paho/durable/#")
    c.disconnect()
    c.loop_stop()


def check_session_publish():
    pub = client("paho-durable-pub")
    for i in range(3):
        pub.publish(f"paho/durable/{i}", f"kept-{i}".encode(), qos=1).wait_for_publish(WAIT_S)
    pub.disconnect()


def check_session_resume():
    c = client("paho-durable", clean_start=False, expiry=600)
    if not c.session_present:
        fail("session_present after the broker restart")
    got = wait_for(c, 3)
    if [m.payload for m in got] != [b"kept-0", b"kept-1", b"kept-2"]:
        fail(f"queued messages after the restart: {[m.payload for m in got]}")


if __name__ == "__main__":
    check, HOST, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
    {
        "props": check_props,
        "shared": check_shared,
        "alias": check_alias,
        "session-start": check_session_start,
        "session-publish": check_session_publish,
        "session-resume": check_session_resume,
    }[check]()
    print("ok")
