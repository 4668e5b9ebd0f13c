#!/usr/bin/python3
"""Consumer group checks of a running Tiercel broker with kafka-python 2.0.2.

Usage: /usr/bin/python3 groups_kafka_python.py HOST:PORT

kafka-python speaks the group protocol's oldest versions (JoinGroup v0-v2,
OffsetCommit v2, OffsetFetch v1-v3, FindCoordinator v0-v1), so these checks
cover what the Go tests, with franz-go's newest versions, do not. What it
checks, each against the data read back:
  - KafkaConsumer with group_id: consume part of a topic, commit, close;
    a second consumer of the group starts exactly at the commits and reads
    the rest, so together they read every record once;
  - KafkaAdminClient: describe_topics marks __consumer_offsets internal;
    list_consumer_groups, describe_consumer_groups,
    list_consumer_group_offsets (no lag left) and delete_consumer_groups
    (after which the group has no offsets).
"""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
from e2elib import expect, expect_eq  # noqa: E402

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402

SUITE = "groups_kafka_python"
PARTITIONS = 3
PER_PARTITION = 30
TIMEOUT_MS = 15000


def client_config(bootstrap):
    return dict(bootstrap_servers=bootstrap, client_id="tiercel-e2e-groups-kafka-python", request_timeout_ms=TIMEOUT_MS + 5000)


def new_consumer(bootstrap, topic, group):
    return KafkaConsumer(topic, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                         session_timeout_ms=10000, heartbeat_interval_ms=1000, **client_config(bootstrap))


def consume(consumer, count, what):
    """Polls until count records came, and returns them as (partition, offset, value)."""
    got = []
    e2elib.wait_until("%s to read %d records" % (what, count), 60,
                      lambda: _poll_into(consumer, got, count) >= count, interval_s=0)
    return got


def _poll_into(consumer, got, count):
    for records in consumer.poll(timeout_ms=500, max_records=count - len(got)).values():
        got.extend((r.partition, r.offset, r.value) for r in records)
    return len(got)


def check_commit_and_resume(bootstrap, topic, group):
    admin = KafkaAdminClient(**client_config(bootstrap))
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)], timeout_ms=TIMEOUT_MS)
    producer = KafkaProducer(acks="all", **client_config(bootstrap))
    want = set()
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            md = producer.send(topic, value=b"p%d-%d" % (p, i), partition=p).get(timeout=TIMEOUT_MS / 1000)
            want.add((p, md.offset, b"p%d-%d" % (p, i)))
    producer.close()
    total = PARTITIONS * PER_PARTITION

    first = new_consumer(bootstrap, topic, group)
    half = consume(first, total // 2, "the first consumer")
    first.commit()
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    committed = {tp.partition: first.committed(tp) for tp in tps}
    # What it read is exactly what it committed: per partition, the
    # records below the committed offset.
    for p in range(PARTITIONS):
        n = len([r for r in half if r[0] == p])
        expect_eq("committed offset of partition %d after reading %d of its records" % (p, n), n, committed[p] or 0)
    first.close()

    second = new_consumer(bootstrap, topic, group)
    rest = consume(second, total - len(half), "the second consumer")
    for p in range(PARTITIONS):
        offs = sorted(r[1] for r in rest if r[0] == p)
        if offs:
            expect_eq("first offset the second consumer read in partition %d" % p, committed[p] or 0, offs[0])
    got = half + rest
    expect_eq("records read by the two consumers (one set)", len(got), len(set(got)))
    expect_eq("records read by the two consumers", sorted(want), sorted(got))
    # Nothing more arrives.
    extra = []
    _poll_into(second, extra, 10)
    expect_eq("records after the end", [], extra)
    second.commit()
    second.close()
    return want


def check_admin(bootstrap, topic, group, want):
    admin = KafkaAdminClient(**client_config(bootstrap))
    described = admin.describe_topics(["__consumer_offsets"])
    expect(len(described) == 1 and described[0]["is_internal"],
           "describe_topics(__consumer_offsets) does not mark it internal: %r" % (described,))
    groups = dict(admin.list_consumer_groups())
    expect_eq("protocol type of %s in list_consumer_groups" % group, "consumer", groups.get(group))
    d = admin.describe_consumer_groups([group])[0]
    expect_eq("state of %s (its consumers closed)" % group, "Empty", d.state)
    expect_eq("members of %s" % group, [], list(d.members))
    offsets = admin.list_consumer_group_offsets(group)
    ends = {}
    for p, o, _ in want:
        ends[p] = max(ends.get(p, 0), o + 1)
    expect_eq("committed offsets of %s (no lag)" % group,
              {p: ends[p] for p in range(PARTITIONS)},
              {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == topic})
    result = dict(admin.delete_consumer_groups([group]))
    expect(result.get(group) is not None and result[group].errno == 0, "delete_consumer_groups: %r" % (result,))
    expect_eq("offsets of %s after deleting it" % group, {}, admin.list_consumer_group_offsets(group))
    expect(group not in dict(admin.list_consumer_groups()), "%s still listed after deletion" % group)


def main():
    bootstrap = e2elib.bootstrap_from_argv(SUITE)
    rid = e2elib.run_id()
    topic = "e2e-groups-kp-%s" % rid
    group = "e2e-kp-group-%s" % rid
    runner = e2elib.Runner(SUITE)
    _, want = runner.run("KafkaConsumer group_id: commit, close, a new consumer resumes at the commits",
                         check_commit_and_resume, bootstrap, topic, group)
    runner.run("admin: internal topic, list/describe groups, committed offsets, delete group",
               check_admin, bootstrap, topic, group, want)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
