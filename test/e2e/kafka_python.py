#!/usr/bin/python3
"""End-to-end checks of a running Tiercel broker with kafka-python 2.0.2.

Usage: /usr/bin/python3 kafka_python.py HOST:PORT

What it checks, each against the data read back:
  - the protocol release kafka-python infers from ApiVersions is >= 2.1,
    so it speaks record batch v2 (headers, zstd) rather than falling back
    to the old message formats;
  - KafkaAdminClient: create_topics with configs (and the duplicate error),
    list_topics, describe_configs;
  - KafkaProducer: keyed records with headers, a null value, explicit
    timestamps, with every compression codec the installed modules allow;
    the offsets the broker returns are contiguous per partition;
  - KafkaConsumer with assign() + seek_to_beginning(): key, value, headers,
    offset and timestamp of every record; a seek into the middle of a batch;
  - beginning_offsets, end_offsets and offsets_for_times.

Consumers here have no group_id and assign partitions by hand;
groups_kafka_python.py covers consumer groups.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
from e2elib import expect, expect_eq  # noqa: E402

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka import codec as kcodec  # noqa: E402
from kafka import errors as kerrors  # noqa: E402
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic  # noqa: E402

SUITE = "kafka_python"
MIN_API_VERSION = (2, 1, 0)
PARTITIONS = 3
RECORDS_PER_CODEC = 90
TIMEOUT_MS = 15000
TS_COUNT = 10
CONFIG_SOURCE_DEFAULT = 5  # DescribeConfigs v1+: DEFAULT_CONFIG

# Codec name → function telling whether the installed modules support it.
CODECS = [
    ("none", lambda: True),
    ("gzip", kcodec.has_gzip),
    ("snappy", kcodec.has_snappy),
    ("lz4", kcodec.has_lz4),
    ("zstd", kcodec.has_zstd),
]


def client_config(bootstrap):
    """Settings shared by every client: short, bounded timeouts."""
    return dict(
        bootstrap_servers=bootstrap,
        client_id="tiercel-e2e-kafka-python",
        request_timeout_ms=TIMEOUT_MS,
        api_version_auto_timeout_ms=TIMEOUT_MS,
        reconnect_backoff_max_ms=1000,
    )


def expect_api_version(what, version):
    """The inferred broker release must allow record batch v2."""
    print("    %s infers broker api_version %s" % (what, ".".join(map(str, version))))
    expect(tuple(version) >= MIN_API_VERSION,
           "%s inferred api_version %r from the broker's ApiVersions ranges; expected >= %r. "
           "kafka-python falls back to old message formats below that: the advertised ranges "
           "do not match a real Kafka release" % (what, version, MIN_API_VERSION))


def check_api_version(bootstrap):
    admin = KafkaAdminClient(**client_config(bootstrap))
    try:
        expect_api_version("KafkaAdminClient", admin.config["api_version"])
    finally:
        admin.close()


def describe_topic_configs(admin, topic, names=None):
    """Returns {name: (value, is_default)} of one topic from DescribeConfigs."""
    configs = dict.fromkeys(names) if names else None
    responses = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)])
    expect_eq("DescribeConfigs response count", 1, len(responses))
    resources = responses[0].resources
    expect_eq("DescribeConfigs resource count", 1, len(resources))
    error_code, error_message, _rtype, rname, entries = resources[0][:5]
    expect(error_code == 0, "DescribeConfigs(%s) error %d (%s): %s"
           % (topic, error_code, kerrors.for_code(error_code).__name__, error_message))
    expect_eq("DescribeConfigs resource name", topic, rname)
    # v0 carries is_default; v1 and later carry config_source in its place.
    if responses[0].API_VERSION == 0:
        return {e[0]: (e[1], bool(e[3])) for e in entries}
    return {e[0]: (e[1], e[3] == CONFIG_SOURCE_DEFAULT) for e in entries}


def check_admin(bootstrap, topic, ts_topic):
    admin = KafkaAdminClient(**client_config(bootstrap))
    try:
        configs = {"retention.ms": "3600000", "max.message.bytes": "2000000"}
        resp = admin.create_topics(
            [NewTopic(topic, PARTITIONS, 1, topic_configs=configs),
             NewTopic(ts_topic, 1, 1)], timeout_ms=TIMEOUT_MS)
        errors = [(t[0], t[1]) for t in resp.topic_errors]
        expect_eq("CreateTopics errors", sorted([(topic, 0), (ts_topic, 0)]), sorted(errors))

        try:
            admin.create_topics([NewTopic(topic, PARTITIONS, 1)], timeout_ms=TIMEOUT_MS)
            raise e2elib.CheckFailed("creating %s a second time succeeded; expected TOPIC_ALREADY_EXISTS" % topic)
        except kerrors.TopicAlreadyExistsError:
            pass

        try:
            admin.create_topics([NewTopic(topic + "-zero", 0, 1)], timeout_ms=TIMEOUT_MS)
            raise e2elib.CheckFailed("creating a topic with 0 partitions succeeded; expected INVALID_PARTITIONS")
        except kerrors.InvalidPartitionsError:
            pass

        names = e2elib.wait_until("%s and %s in list_topics" % (topic, ts_topic), 10,
                                  lambda: {topic, ts_topic} <= set(admin.list_topics()))
        expect(names, "list_topics")

        described = describe_topic_configs(admin, topic)
        for name, value in configs.items():
            expect(name in described, "DescribeConfigs(%s) does not list %s; got %s"
                   % (topic, name, sorted(described)))
            expect_eq("DescribeConfigs(%s) %s" % (topic, name), (value, False), described[name])

        only = describe_topic_configs(admin, topic, names=["retention.ms"])
        expect_eq("DescribeConfigs(%s) with a name filter" % topic,
                  {"retention.ms": ("3600000", False)}, only)
    finally:
        admin.close()


def record_value(codec, i):
    """Values of varied length, compressible, with a null value now and then."""
    if i % 29 == 28:
        return None
    return ("%s-value-%d-" % (codec, i) + "héllo wörld " * (i % 11)).encode("utf-8")


def produce_codec(bootstrap, topic, codec):
    """Sends RECORDS_PER_CODEC records with one codec; returns them with offsets."""
    producer = KafkaProducer(
        compression_type=None if codec == "none" else codec,
        acks="all", linger_ms=20, max_block_ms=TIMEOUT_MS, retries=0,
        **client_config(bootstrap))
    try:
        expect_api_version("KafkaProducer(%s)" % codec, producer.config["api_version"])
        sent = []
        for i in range(RECORDS_PER_CODEC):
            partition = i % PARTITIONS
            key = ("%s-key-%d" % (codec, i)).encode()
            value = record_value(codec, i)
            headers = [("codec", codec.encode()), ("i", str(i).encode())]
            if i % 5 == 0:
                headers = []
            future = producer.send(topic, key=key, value=value, headers=headers, partition=partition)
            sent.append((partition, key, value, headers, future))
        producer.flush(timeout=30)
        records = []
        for partition, key, value, headers, future in sent:
            md = future.get(timeout=30)
            expect_eq("partition in the produce result", partition, md.partition)
            records.append(dict(partition=partition, offset=md.offset, key=key, value=value,
                                headers=headers, timestamp=md.timestamp))
        return records
    finally:
        producer.close(timeout=10)


def check_offsets_contiguous(records, start):
    """Offsets per partition must be start[p], start[p]+1, ... in send order."""
    next_offset = dict(start)
    for r in records:
        p = r["partition"]
        expect(r["offset"] == next_offset[p],
               "partition %d: the broker returned offset %d for record %r; expected %d "
               "(offsets must be contiguous in send order)" % (p, r["offset"], r["key"], next_offset[p]))
        next_offset[p] += 1
    return next_offset


def check_produce(bootstrap, topic):
    """Produces with every codec available; returns all records sent."""
    records = []
    next_offset = {p: 0 for p in range(PARTITIONS)}
    for codec, available in CODECS:
        if not available():
            print("    note: kafka-python has no module for %s here; skipping that codec "
                  "(install python3-snappy, python3-lz4, python3-zstandard)" % codec)
            continue
        got = produce_codec(bootstrap, topic, codec)
        next_offset = check_offsets_contiguous(got, next_offset)
        print("    %s: %d records, offsets now %s" % (codec, len(got), next_offset))
        records.extend(got)
    return records


def check_produce_timestamps(bootstrap, ts_topic):
    """Sends TS_COUNT records with timestamps base, base+1000, ...; returns base."""
    base = (int(time.time() * 1000) - 3600 * 1000) // 1000 * 1000
    producer = KafkaProducer(acks="all", linger_ms=20, max_block_ms=TIMEOUT_MS, **client_config(bootstrap))
    try:
        futures = [producer.send(ts_topic, value=b"ts-%d" % i, partition=0, timestamp_ms=base + i * 1000)
                   for i in range(TS_COUNT)]
        producer.flush(timeout=30)
        offsets = [f.get(timeout=30).offset for f in futures]
        expect_eq("offsets of the timestamped records", list(range(TS_COUNT)), offsets)
    finally:
        producer.close(timeout=10)
    return base


def new_consumer(bootstrap):
    return KafkaConsumer(
        group_id=None, enable_auto_commit=False, auto_offset_reset="none",
        fetch_max_wait_ms=200, consumer_timeout_ms=1000,
        **client_config(bootstrap))


def consume(consumer, want, timeout_s=60):
    """Polls until want records arrived or timeout_s passed; returns them."""
    got = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500, max_records=1000).values():
            got.extend(batch)
    return got


def as_tuple(partition, offset, key, value, headers):
    return (partition, offset, key, value, [(h[0], bytes(h[1])) for h in headers])


def check_consume(bootstrap, topic, records):
    consumer = new_consumer(bootstrap)
    try:
        expect_api_version("KafkaConsumer", consumer.config["api_version"])
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        got = consume(consumer, len(records))
        for p in range(PARTITIONS):
            want = [as_tuple(r["partition"], r["offset"], r["key"], r["value"], r["headers"])
                    for r in records if r["partition"] == p]
            have = [as_tuple(m.partition, m.offset, m.key, m.value, m.headers)
                    for m in got if m.partition == p]
            expect_eq("records read back from %s[%d] (partition, offset, key, value, headers)"
                      % (topic, p), want, have)
        want_ts = sorted((r["partition"], r["offset"], r["timestamp"]) for r in records)
        have_ts = sorted((m.partition, m.offset, m.timestamp) for m in got)
        expect_eq("timestamps read back (as the producer reported them)", want_ts, have_ts)
        expect_eq("timestamp types read back (0 = CreateTime)", {0}, {m.timestamp_type for m in got})

        # A seek into the middle: the broker returns whole batches and the
        # client drops the records before the offset asked for.
        mid = len([r for r in records if r["partition"] == 0]) // 2 + 1
        consumer.seek(tps[0], mid)
        consumer.pause(tps[1], tps[2])
        tail = consume(consumer, 3, timeout_s=20)
        expect(len(tail) >= 3, "after seek(%s[0], %d) read %d records; expected at least 3"
               % (topic, mid, len(tail)))
        expect_eq("offsets after seek(%s[0], %d)" % (topic, mid),
                  [(0, mid), (0, mid + 1), (0, mid + 2)], [(m.partition, m.offset) for m in tail[:3]])
    finally:
        consumer.close(autocommit=False)


def check_offset_queries(bootstrap, topic, records, ts_topic, base):
    consumer = new_consumer(bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        counts = {tp: len([r for r in records if r["partition"] == tp.partition]) for tp in tps}
        expect_eq("end_offsets(%s)" % topic, counts, consumer.end_offsets(tps))
        expect_eq("beginning_offsets(%s)" % topic, {tp: 0 for tp in tps}, consumer.beginning_offsets(tps))

        tp = TopicPartition(ts_topic, 0)
        queries = [
            (base, (0, base)),
            (base + 1, (1, base + 1000)),
            (base + 2500, (3, base + 3000)),
            (base + (TS_COUNT - 1) * 1000, (TS_COUNT - 1, base + (TS_COUNT - 1) * 1000)),
            (base + (TS_COUNT - 1) * 1000 + 1, None),
        ]
        for ts, want in queries:
            got = consumer.offsets_for_times({tp: ts})[tp]
            got = None if got is None else (got.offset, got.timestamp)
            expect_eq("offsets_for_times(%s[0], base+%d) as (offset, timestamp)" % (ts_topic, ts - base),
                      want, got)

        consumer.assign([tp])
        consumer.seek_to_beginning()
        got = consume(consumer, TS_COUNT)
        expect_eq("(offset, timestamp, value) read back from %s" % ts_topic,
                  [(i, base + i * 1000, b"ts-%d" % i) for i in range(TS_COUNT)],
                  [(m.offset, m.timestamp, m.value) for m in got])
    finally:
        consumer.close(autocommit=False)


def main():
    bootstrap = e2elib.bootstrap_from_argv(SUITE)
    rid = e2elib.run_id()
    topic = "e2e-kp-%s" % rid
    ts_topic = "e2e-kp-ts-%s" % rid
    runner = e2elib.Runner(SUITE)

    runner.run("api version inferred >= 2.1", check_api_version, bootstrap)
    ok, _ = runner.run("admin create_topics, list_topics, describe_configs", check_admin, bootstrap, topic, ts_topic)
    if not ok:  # the producers below would auto-create topics of the wrong shape
        topic = ts_topic = None
    _, records = runner.run("producer: every codec, keys, headers, offsets", check_produce, bootstrap, topic)
    _, base = runner.run("producer: explicit timestamps", check_produce_timestamps, bootstrap, ts_topic)
    runner.run("consumer: assign + seek_to_beginning reads everything back",
               check_consume, bootstrap, topic, records)
    runner.run("end_offsets, beginning_offsets, offsets_for_times",
               check_offset_queries, bootstrap, topic, records, ts_topic, base)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
