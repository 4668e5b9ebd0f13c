#!/usr/bin/python3
"""Small client operations that kcat cannot do, for kcat.sh.

Usage:
  e2e_helper.py create-topic HOST:PORT TOPIC PARTITIONS [KEY=VALUE ...]
      creates a topic with confluent-kafka's AdminClient.
  e2e_helper.py produce-timestamps HOST:PORT TOPIC PARTITION BASE_MS STEP_MS COUNT
      produces COUNT records "ts-<i>" with timestamps BASE_MS + i*STEP_MS,
      in two batches, and prints "<offset> <timestamp>" per record.
  e2e_helper.py metadata
      reads `kcat -L -J` output on stdin and prints one line per broker
      ("broker <id> <host:port>") and per topic
      ("topic <name> partitions=<n> leaders=<l,...> errors=<e,...|none>"), sorted.

Exits non-zero, with the reason on stderr, when anything goes wrong.
"""

import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402

# This directory holds confluent_kafka.py: load the real package.
e2elib.load_package_from_system("confluent_kafka")
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

TIMEOUT_S = 15


def create_topic(bootstrap, topic, partitions, *configs):
    config = dict(c.split("=", 1) for c in configs)
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": TIMEOUT_S * 1000})
    f = admin.create_topics([NewTopic(topic, int(partitions), 1, config=config)],
                            operation_timeout=TIMEOUT_S, request_timeout=TIMEOUT_S)[topic]
    f.result(timeout=TIMEOUT_S * 2)


def produce_timestamps(bootstrap, topic, partition, base, step, count):
    partition, base, step, count = int(partition), int(base), int(step), int(count)
    reports = []

    def on_delivery(err, msg):
        if err is not None:
            raise SystemExit("delivery of %r failed: %s" % (msg.value(), err))
        reports.append((msg.offset(), msg.timestamp()[1]))

    # Two producers, so the records land in (at least) two batches and the
    # broker has to look inside batches and across them.
    half = count // 2
    for lo, hi in ((0, half), (half, count)):
        p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
                      "message.timeout.ms": 30000, "socket.timeout.ms": TIMEOUT_S * 1000})
        for i in range(lo, hi):
            p.produce(topic, value=b"ts-%d" % i, partition=partition, timestamp=base + i * step,
                      on_delivery=on_delivery)
        left = p.flush(30)
        if left:
            raise SystemExit("flush left %d records undelivered" % left)
    for offset, ts in reports:
        print(offset, ts)


def metadata():
    md = json.load(sys.stdin)
    lines = ["broker %d %s" % (b["id"], b["name"]) for b in md.get("brokers", [])]
    for t in md.get("topics", []):
        parts = sorted(t.get("partitions", []), key=lambda p: p["partition"])
        errors = [e for e in [t.get("error")] + [p.get("error") for p in parts] if e]
        lines.append("topic %s partitions=%d leaders=%s errors=%s" % (
            t["topic"], len(parts),
            ",".join(str(p.get("leader")) for p in parts),
            ",".join(errors) or "none"))
    print("\n".join(sorted(lines)))


COMMANDS = {
    "create-topic": create_topic,
    "produce-timestamps": produce_timestamps,
    "metadata": metadata,
}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.stderr.write(__doc__)
        return 2
    try:
        COMMANDS[sys.argv[1]](*sys.argv[2:])
    except TypeError as e:
        sys.stderr.write("%s: %s\n%s" % (sys.argv[1], e, __doc__))
        return 2
    except Exception as e:  # report any client error as a failure of this step
        sys.stderr.write("e2e_helper %s failed: %s\n" % (sys.argv[1], e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
