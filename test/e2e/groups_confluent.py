#!/usr/bin/python3
"""Consumer group checks of a running Tiercel broker with confluent-kafka
(librdkafka).

Usage: /usr/bin/python3 groups_confluent.py HOST:PORT

What it checks, each against the data read back:
  - Consumer subscribe: consume part of a topic, commit synchronously,
    close; a new consumer of the group starts exactly at the commits and
    reads the rest: every record once between them;
  - committed() and get_watermark_offsets() give the lag, which follows
    new records and commits;
  - two consumers with the cooperative-sticky assignor split the
    partitions and read every new record exactly once;
  - AdminClient.list_groups describes the group (state, protocol type,
    protocol, members).
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
from e2elib import expect, expect_eq  # noqa: E402

# This directory holds confluent_kafka.py: load the real package.
ck = e2elib.load_package_from_system("confluent_kafka")
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

SUITE = "groups_confluent"
PARTITIONS = 4
TIMEOUT_S = 15


def base_config(bootstrap):
    return {"bootstrap.servers": bootstrap, "socket.timeout.ms": TIMEOUT_S * 1000}


def create_topic(bootstrap, topic, partitions):
    admin = AdminClient(base_config(bootstrap))
    admin.create_topics([NewTopic(topic, partitions, 1)], request_timeout=TIMEOUT_S)[topic].result(timeout=TIMEOUT_S * 2)


def produce(bootstrap, topic, start, count):
    """Produces value b"v<i>" to partition i % PARTITIONS and returns the
    set of (partition, offset, value)."""
    p = Producer(dict(base_config(bootstrap), **{"acks": "all", "linger.ms": 5}))
    out = set()
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            out.add((msg.partition(), msg.offset(), msg.value()))

    for i in range(start, start + count):
        p.produce(topic, value=b"v%d" % i, partition=i % PARTITIONS, on_delivery=on_delivery)
    expect_eq("records left unflushed", 0, p.flush(30))
    expect_eq("delivery errors", [], errors)
    return out


def new_consumer(bootstrap, group, **extra):
    conf = dict(base_config(bootstrap), **{
        "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000})
    conf.update(extra)
    return Consumer(conf)


def consume(consumers, count, what, got=None):
    """Polls the consumers in turn until count records came; returns a list
    of (consumer index, partition, offset, value)."""
    got = [] if got is None else got
    deadline = time.monotonic() + 60
    while len(got) < count:
        if time.monotonic() > deadline:
            raise e2elib.CheckFailed("%s read %d of %d records in 60s" % (what, len(got), count))
        for i, c in enumerate(consumers):
            for m in c.consume(num_messages=count - len(got), timeout=0.2):
                if m.error():
                    raise KafkaException(m.error())
                got.append((i, m.partition(), m.offset(), m.value()))
    return got


def check_commit_and_resume(bootstrap, topic, group):
    create_topic(bootstrap, topic, PARTITIONS)
    want = produce(bootstrap, topic, 0, 400)
    first = new_consumer(bootstrap, group)
    first.subscribe([topic])
    part1 = consume([first], 250, "the first consumer")
    first.commit(asynchronous=False)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    committed = {tp.partition: tp.offset for tp in first.committed(tps, timeout=TIMEOUT_S)}
    for p in range(PARTITIONS):
        read = [r[2] for r in part1 if r[1] == p]
        expect_eq("committed offset of partition %d" % p, (max(read) + 1) if read else -1001, committed[p])
    first.close()

    second = new_consumer(bootstrap, group)
    second.subscribe([topic])
    part2 = consume([second], 150, "the second consumer")
    for p in range(PARTITIONS):
        offs = sorted(r[2] for r in part2 if r[1] == p)
        if offs:
            expect_eq("first offset the second consumer read in partition %d" % p, max(committed[p], 0), offs[0])
    got = [(r[1], r[2], r[3]) for r in part1 + part2]
    expect_eq("records read twice", len(got), len(set(got)))
    expect_eq("records read by the two consumers", sorted(want), sorted(got))
    second.commit(asynchronous=False)
    return second


def lag_of(consumer, topic):
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    lag = {}
    for tp in consumer.committed(tps, timeout=TIMEOUT_S):
        _, high = consumer.get_watermark_offsets(tp, timeout=TIMEOUT_S)
        lag[tp.partition] = high - max(tp.offset, 0)
    return lag


def check_lag(bootstrap, topic, consumer):
    expect_eq("lag after reading and committing everything", {p: 0 for p in range(PARTITIONS)}, lag_of(consumer, topic))
    produce(bootstrap, topic, 1000, 40)  # 10 more per partition
    expect_eq("lag after 10 new records per partition", {p: 10 for p in range(PARTITIONS)}, lag_of(consumer, topic))
    consume([consumer], 40, "the consumer, catching up")
    consumer.commit(asynchronous=False)
    expect_eq("lag after catching up", {p: 0 for p in range(PARTITIONS)}, lag_of(consumer, topic))
    consumer.close()


def check_cooperative_pair(bootstrap, topic, group):
    create_topic(bootstrap, topic, PARTITIONS)
    cs = [new_consumer(bootstrap, group, **{"partition.assignment.strategy": "cooperative-sticky"}) for _ in range(2)]
    for c in cs:
        c.subscribe([topic])

    def settled():
        for c in cs:
            c.poll(0.1)
        return [len(c.assignment()) for c in cs] == [2, 2]
    e2elib.wait_until("two cooperative consumers to hold two partitions each", 60, settled, interval_s=0)
    want = produce(bootstrap, topic, 0, 200)
    got = consume(cs, 200, "the two consumers")
    time.sleep(1)
    consume(cs, 0, "the two consumers", got)  # nothing more
    for c in cs:
        for m in c.consume(num_messages=10, timeout=0.5):
            got.append((None, m.partition(), m.offset(), m.value()))
    records = [(r[1], r[2], r[3]) for r in got]
    expect_eq("records read twice", len(records), len(set(records)))
    expect_eq("records read by the two consumers", sorted(want), sorted(records))
    for i in range(2):
        parts = {r[1] for r in got if r[0] == i}
        expect_eq("partitions consumer %d read from" % i, {tp.partition for tp in cs[i].assignment()}, parts)
    for c in cs:
        c.commit(asynchronous=False)
    return cs


def check_list_groups(bootstrap, group, cs):
    admin = AdminClient(base_config(bootstrap))
    groups = admin.list_groups(group, timeout=TIMEOUT_S)
    expect_eq("groups listed for %s" % group, [group], [g.id for g in groups])
    g = groups[0]
    expect_eq("state of %s" % group, "Stable", g.state)
    expect_eq("protocol type of %s" % group, "consumer", g.protocol_type)
    expect_eq("protocol of %s" % group, "cooperative-sticky", g.protocol)
    expect_eq("members of %s" % group, 2, len(g.members))
    for c in cs:
        c.close()


def main():
    bootstrap = e2elib.bootstrap_from_argv(SUITE)
    rid = e2elib.run_id()
    print("    confluent-kafka %s, librdkafka %s" % (ck.version()[0], ck.libversion()[0]))
    runner = e2elib.Runner(SUITE)
    _, consumer = runner.run("consumer: commit, close, a new consumer resumes at the commits",
                             check_commit_and_resume, bootstrap, "e2e-groups-ck-%s" % rid, "e2e-ck-group-%s" % rid)
    runner.run("committed() and watermarks give the lag", check_lag, bootstrap, "e2e-groups-ck-%s" % rid, consumer)
    pair_group = "e2e-ck-pair-%s" % rid
    _, cs = runner.run("two cooperative-sticky consumers read each record once",
                       check_cooperative_pair, bootstrap, "e2e-groups-ck-pair-%s" % rid, pair_group)
    runner.run("AdminClient.list_groups describes the group", check_list_groups, bootstrap, pair_group, cs)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
