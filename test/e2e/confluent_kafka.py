#!/usr/bin/python3
"""End-to-end checks of a running Tiercel broker with confluent-kafka (librdkafka).

Usage: /usr/bin/python3 confluent_kafka.py HOST:PORT

What it checks, each against the data read back:
  - AdminClient: create_topics with configs, validate_only (nothing is
    created), the duplicate error, list_topics (brokers, partitions, leaders),
    describe_configs of a topic and of the broker, alter_configs (which
    replaces the whole set), create_partitions, delete_topics;
  - Producer with acks=all and enable.idempotence=true, with every
    compression codec: delivery reports carry contiguous offsets in order;
  - Consumer with assign(OFFSET_BEGINNING): key, value, headers, offset and
    timestamp of every record; an assign into the middle of a batch;
  - get_watermark_offsets and offsets_for_times.

Consumers here assign partitions by hand (groups_confluent.py covers
consumer groups). librdkafka wants a group.id even for a consumer that only
assigns by hand; one is set, and nothing here commits, subscribes or stores
offsets.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
from e2elib import expect, expect_eq  # noqa: E402

# This file is itself named confluent_kafka.py: load the real package.
ck = e2elib.load_package_from_system("confluent_kafka")
from confluent_kafka import (  # noqa: E402
    OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic  # noqa: E402

SUITE = "confluent_kafka"
PARTITIONS = 3
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
RECORDS_PER_CODEC = 600
TS_COUNT = 10
TIMEOUT_S = 15
TOPIC_CONFIGS = {"retention.ms": "7200000", "max.message.bytes": "2000000"}


def base_config(bootstrap):
    return {
        "bootstrap.servers": bootstrap,
        "client.id": "tiercel-e2e-confluent-kafka",
        "socket.timeout.ms": TIMEOUT_S * 1000,
        "reconnect.backoff.max.ms": 1000,
    }


def new_admin(bootstrap):
    return AdminClient(base_config(bootstrap))


def result(what, future):
    """Waits for one admin future, turning a broker error into a failed check."""
    try:
        return future.result(timeout=TIMEOUT_S * 2)
    except KafkaException as e:
        raise e2elib.CheckFailed("%s failed: %s" % (what, e.args[0]))


def expect_kafka_error(what, future, code):
    """The admin future must fail with the error code `code`."""
    try:
        future.result(timeout=TIMEOUT_S * 2)
    except KafkaException as e:
        err = e.args[0]
        expect(err.code() == code, "%s: expected error %s, got %s" % (what, KafkaError(code).name(), err))
        return
    raise e2elib.CheckFailed("%s succeeded; expected error %s" % (what, KafkaError(code).name()))


def list_topics(admin, topic=None):
    return admin.list_topics(topic=topic, timeout=TIMEOUT_S)


def check_create_topics(bootstrap, topic, ts_topic, validate_topic):
    admin = new_admin(bootstrap)
    futures = admin.create_topics(
        [NewTopic(topic, PARTITIONS, 1, config=TOPIC_CONFIGS), NewTopic(ts_topic, 1, 1)],
        operation_timeout=TIMEOUT_S, request_timeout=TIMEOUT_S)
    for name, f in futures.items():
        result("create_topics(%s)" % name, f)

    f = admin.create_topics([NewTopic(validate_topic, 2, 1)], validate_only=True,
                            request_timeout=TIMEOUT_S)[validate_topic]
    result("create_topics(%s, validate_only=True)" % validate_topic, f)

    f = admin.create_topics([NewTopic(topic, PARTITIONS, 1)], request_timeout=TIMEOUT_S)[topic]
    expect_kafka_error("creating %s a second time" % topic, f, KafkaError.TOPIC_ALREADY_EXISTS)

    # Without auto-creation: a metadata request that names the topic
    # would create it on a broker with auto.create.topics.enable.
    md = list_topics(admin)
    expect(validate_topic not in md.topics,
           "create_topics(validate_only=True) created %s: list_topics shows %r"
           % (validate_topic, md.topics.get(validate_topic)))


def check_list_topics(bootstrap, topic):
    node = e2elib.node_id()
    md = list_topics(new_admin(bootstrap))
    brokers = {b.id: "%s:%d" % (b.host, b.port) for b in md.brokers.values()}
    expect_eq("brokers in list_topics (id → host:port)", {node: bootstrap}, brokers)
    expect(topic in md.topics, "list_topics does not show %s; it shows %s" % (topic, sorted(md.topics)))
    t = md.topics[topic]
    expect(t.error is None, "list_topics: %s has error %s" % (topic, t.error))
    got = {p.id: (p.leader, list(p.replicas), list(p.isrs), p.error) for p in t.partitions.values()}
    want = {p: (node, [node], [node], None) for p in range(PARTITIONS)}
    expect_eq("partitions of %s as {id: (leader, replicas, isrs, error)}" % topic, want, got)


def describe(admin, restype, name):
    res = ConfigResource(restype, name)
    return result("describe_configs(%s %s)" % (restype, name),
                  admin.describe_configs([res], request_timeout=TIMEOUT_S)[res])


def source_name(entry):
    src = entry.source
    return getattr(src, "name", None) or ck.admin.ConfigSource(src).name


def check_describe_configs(bootstrap, topic):
    admin = new_admin(bootstrap)
    configs = describe(admin, ConfigResource.Type.TOPIC, topic)
    for name, value in TOPIC_CONFIGS.items():
        expect(name in configs, "describe_configs(%s) lacks %s; it has %s" % (topic, name, sorted(configs)))
        e = configs[name]
        expect_eq("describe_configs(%s) %s as (value, source, is_default)" % (topic, name),
                  (value, "DYNAMIC_TOPIC_CONFIG", False), (e.value, source_name(e), e.is_default))
    expect("cleanup.policy" in configs,
           "describe_configs(%s) lacks cleanup.policy (Kafka lists every topic config); it has %s"
           % (topic, sorted(configs)))
    e = configs["cleanup.policy"]
    expect_eq("describe_configs(%s) cleanup.policy as (value, is_default)" % topic,
              ("delete", True), (e.value, e.is_default))

    node = str(e2elib.node_id())
    broker = describe(admin, ConfigResource.Type.BROKER, node)
    expect("num.partitions" in broker,
           "describe_configs(broker %s) lacks num.partitions; it has %s" % (node, sorted(broker)))
    want = os.environ.get("E2E_NUM_PARTITIONS")  # the broker was started with this override
    if want:
        expect_eq("describe_configs(broker %s) num.partitions" % node, want, broker["num.partitions"].value)


def check_alter_configs(bootstrap, topic):
    """AlterConfigs replaces the whole set: what is not named goes back to its default."""
    admin = new_admin(bootstrap)
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"retention.ms": "1800000"})
    result("alter_configs(%s)" % topic, admin.alter_configs([res], request_timeout=TIMEOUT_S)[res])
    configs = describe(admin, ConfigResource.Type.TOPIC, topic)
    e = configs.get("retention.ms")
    expect(e is not None, "describe_configs(%s) lacks retention.ms after alter_configs" % topic)
    expect_eq("retention.ms after alter_configs", ("1800000", False), (e.value, e.is_default))
    e = configs.get("max.message.bytes")
    expect(e is not None, "describe_configs(%s) lacks max.message.bytes after alter_configs" % topic)
    expect(e.is_default and e.value != TOPIC_CONFIGS["max.message.bytes"],
           "max.message.bytes after an alter_configs that did not name it: expected the default, "
           "got value %r is_default=%r source=%s" % (e.value, e.is_default, source_name(e)))


def produce(bootstrap, topic, codec, messages):
    """Produces messages (dicts of produce() arguments) idempotently; returns delivery reports.

    Each report is (partition, offset, key, value, headers, timestamp) in the
    order the messages were given, or an error string.
    """
    conf = base_config(bootstrap)
    conf.update({
        "acks": "all",
        "enable.idempotence": True,
        "compression.codec": codec,
        "linger.ms": 10,
        "batch.num.messages": 100,
        "message.timeout.ms": 60000,
        "request.timeout.ms": TIMEOUT_S * 1000,
    })
    producer = Producer(conf)
    reports = [None] * len(messages)

    def on_delivery(i):
        # A delivery report carries no headers: take them from the input.
        headers = list(messages[i].get("headers") or [])

        def cb(err, msg):
            if err is not None:
                reports[i] = "message %d: %s" % (i, err)
            else:
                reports[i] = (msg.partition(), msg.offset(), msg.key(), msg.value(),
                              headers, msg.timestamp()[1])
        return cb

    for i, m in enumerate(messages):
        producer.produce(topic, on_delivery=on_delivery(i), **m)
        producer.poll(0)
    left = producer.flush(60)
    expect(left == 0, "producer.flush(60) left %d of %d messages undelivered" % (left, len(messages)))
    errors = [r for r in reports if isinstance(r, str) or r is None]
    expect(not errors, "%d delivery reports with errors, first: %s" % (len(errors), errors[:3]))
    return reports


def codec_messages(codec):
    msgs = []
    for i in range(RECORDS_PER_CODEC):
        value = None if i % 97 == 96 else ("%s-%d-" % (codec, i) + "ünïcode ✓ " * (i % 13)).encode()
        headers = [("codec", codec.encode()), ("n", str(i).encode())] if i % 4 else None
        msgs.append(dict(key=("%s-k%d" % (codec, i)).encode(), value=value,
                         partition=i % PARTITIONS, headers=headers))
    return msgs


def check_produce(bootstrap, topic):
    """Produces with every codec; returns the delivery reports."""
    all_reports = []
    next_offset = {p: 0 for p in range(PARTITIONS)}
    for codec in CODECS:
        msgs = codec_messages(codec)
        reports = produce(bootstrap, topic, codec, msgs)
        for m, r in zip(msgs, reports):
            p, off = r[0], r[1]
            expect_eq("partition in the delivery report of %r" % m["key"], m["partition"], p)
            expect(off == next_offset[p], "%s: partition %d: delivery report offset %d for %r; expected %d "
                   "(idempotent producer: contiguous, in order)" % (codec, p, off, m["key"], next_offset[p]))
            next_offset[p] += 1
        print("    %s: %d records delivered, offsets now %s" % (codec, len(reports), next_offset))
        all_reports.extend(reports)
    return all_reports


def new_consumer(bootstrap):
    conf = base_config(bootstrap)
    conf.update({
        "group.id": "tiercel-e2e-unused",  # required by librdkafka; never joined
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
        "fetch.wait.max.ms": 200,
    })
    return Consumer(conf)


def consume(consumer, partitions, want, timeout_s=60):
    """Reads until every partition reported EOF and want messages arrived."""
    got, eof = [], set()
    deadline = time.monotonic() + timeout_s
    while (len(eof) < len(partitions) or len(got) < want) and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                eof.add(msg.partition())
                continue
            raise e2elib.CheckFailed("consumer error on %s[%s]: %s" % (msg.topic(), msg.partition(), msg.error()))
        got.append(msg)
        eof.discard(msg.partition())
    return got


def msg_tuple(m):
    return (m.partition(), m.offset(), m.key(), m.value(), m.headers() or [], m.timestamp()[1])


def check_consume(bootstrap, topic, reports):
    consumer = new_consumer(bootstrap)
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        got = consume(consumer, range(PARTITIONS), len(reports))
        for p in range(PARTITIONS):
            want = [r for r in reports if r[0] == p]
            have = [msg_tuple(m) for m in got if m.partition() == p]
            expect_eq("messages read back from %s[%d] as (partition, offset, key, value, headers, timestamp)"
                      % (topic, p), want, have)
        types = {m.timestamp()[0] for m in got}
        expect_eq("timestamp types read back", {ck.TIMESTAMP_CREATE_TIME}, types)

        # Start inside a compressed batch: librdkafka must get the batch
        # and drop the records before the offset.
        start = RECORDS_PER_CODEC // PARTITIONS + 7  # inside the gzip records
        consumer.assign([TopicPartition(topic, 1, start)])
        tail = consume(consumer, [1], sum(1 for r in reports if r[0] == 1) - start, timeout_s=30)
        expect_eq("offsets read from %s[1] after assign at %d" % (topic, start),
                  [r[1] for r in reports if r[0] == 1 and r[1] >= start], [m.offset() for m in tail])
    finally:
        consumer.close()


def check_watermarks(bootstrap, topic, reports):
    consumer = new_consumer(bootstrap)
    try:
        for p in range(PARTITIONS):
            n = sum(1 for r in reports if r[0] == p)
            got = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT_S)
            expect_eq("get_watermark_offsets(%s[%d]) as (low, high)" % (topic, p), (0, n), tuple(got))
    finally:
        consumer.close()


def check_offsets_for_times(bootstrap, ts_topic):
    base = (int(time.time() * 1000) - 7200 * 1000) // 1000 * 1000
    first = [dict(value=b"ts-%d" % i, partition=0, timestamp=base + i * 1000) for i in range(TS_COUNT // 2)]
    second = [dict(value=b"ts-%d" % i, partition=0, timestamp=base + i * 1000) for i in range(TS_COUNT // 2, TS_COUNT)]
    # Two producers, so the records land in at least two batches.
    reports = produce(bootstrap, ts_topic, "lz4", first) + produce(bootstrap, ts_topic, "none", second)
    expect_eq("(offset, timestamp) in the delivery reports of %s" % ts_topic,
              [(i, base + i * 1000) for i in range(TS_COUNT)], [(r[1], r[5]) for r in reports])

    consumer = new_consumer(bootstrap)
    try:
        queries = [
            (base, 0),
            (base + 1, 1),
            (base + 4500, 5),  # first record of the second batch
            (base + 3200, 4),
            (base + (TS_COUNT - 1) * 1000, TS_COUNT - 1),
            (base + TS_COUNT * 1000, OFFSET_END),  # nothing that late: -1
        ]
        for ts, want in queries:
            got = consumer.offsets_for_times([TopicPartition(ts_topic, 0, ts)], timeout=TIMEOUT_S)
            expect(len(got) == 1 and got[0].error is None,
                   "offsets_for_times(%s[0], base+%d) returned %r" % (ts_topic, ts - base, got))
            expect_eq("offsets_for_times(%s[0], base+%d)" % (ts_topic, ts - base), want, got[0].offset)

        tp = consumer.offsets_for_times([TopicPartition(ts_topic, 0, base + 6000)], timeout=TIMEOUT_S)[0]
        consumer.assign([tp])
        got = consume(consumer, [0], TS_COUNT - 6, timeout_s=30)
        expect_eq("(offset, timestamp, value) read from the offset for base+6000",
                  [(i, base + i * 1000, b"ts-%d" % i) for i in range(6, TS_COUNT)],
                  [(m.offset(), m.timestamp()[1], m.value()) for m in got])
    finally:
        consumer.close()


def check_create_partitions(bootstrap, topic):
    admin = new_admin(bootstrap)
    f = admin.create_partitions([NewPartitions(topic, PARTITIONS + 1)], request_timeout=TIMEOUT_S)[topic]
    result("create_partitions(%s, %d)" % (topic, PARTITIONS + 1), f)
    e2elib.wait_until("%s to have %d partitions in list_topics" % (topic, PARTITIONS + 1), 10,
                      lambda: len(list_topics(admin, topic).topics[topic].partitions) == PARTITIONS + 1)
    reports = produce(bootstrap, topic, "zstd", [dict(key=b"new", value=b"partition", partition=PARTITIONS)])
    expect_eq("offset of the first record in the new partition", 0, reports[0][1])
    consumer = new_consumer(bootstrap)
    try:
        consumer.assign([TopicPartition(topic, PARTITIONS, OFFSET_BEGINNING)])
        got = consume(consumer, [PARTITIONS], 1, timeout_s=30)
        expect_eq("records read back from the new partition", [(PARTITIONS, 0, b"new", b"partition")],
                  [msg_tuple(m)[:4] for m in got])
    finally:
        consumer.close()


def check_delete_topics(bootstrap, topic):
    admin = new_admin(bootstrap)
    result("create_topics(%s)" % topic,
           admin.create_topics([NewTopic(topic, 2, 1)], request_timeout=TIMEOUT_S)[topic])
    produce(bootstrap, topic, "none", [dict(value=b"doomed", partition=0)])
    result("delete_topics(%s)" % topic,
           admin.delete_topics([topic], operation_timeout=TIMEOUT_S, request_timeout=TIMEOUT_S)[topic])
    e2elib.wait_until("%s to leave list_topics" % topic, 10, lambda: topic not in list_topics(admin).topics)
    f = admin.delete_topics([topic], request_timeout=TIMEOUT_S)[topic]
    expect_kafka_error("deleting %s again" % topic, f, KafkaError.UNKNOWN_TOPIC_OR_PART)


def main():
    bootstrap = e2elib.bootstrap_from_argv(SUITE)
    rid = e2elib.run_id()
    topic = "e2e-ck-%s" % rid
    ts_topic = "e2e-ck-ts-%s" % rid
    print("    confluent-kafka %s, librdkafka %s" % (ck.version()[0], ck.libversion()[0]))
    runner = e2elib.Runner(SUITE)

    ok, _ = runner.run("admin create_topics (configs, validate_only, duplicate)",
                       check_create_topics, bootstrap, topic, ts_topic, "e2e-ck-validate-%s" % rid)
    if not ok:  # the producers below would auto-create topics of the wrong shape
        topic = ts_topic = None
    runner.run("admin list_topics", check_list_topics, bootstrap, topic)
    runner.run("admin describe_configs (topic and broker)", check_describe_configs, bootstrap, topic)
    _, reports = runner.run("idempotent producer: every codec, keys, headers, offsets",
                            check_produce, bootstrap, topic)
    runner.run("consumer: assign(OFFSET_BEGINNING) reads everything back", check_consume, bootstrap, topic, reports)
    runner.run("get_watermark_offsets", check_watermarks, bootstrap, topic, reports)
    runner.run("offsets_for_times", check_offsets_for_times, bootstrap, ts_topic)
    runner.run("admin alter_configs replaces the set", check_alter_configs, bootstrap, topic)
    runner.run("admin create_partitions", check_create_partitions, bootstrap, topic)
    runner.run("admin delete_topics", check_delete_topics, bootstrap, "e2e-ck-delete-%s" % rid)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
