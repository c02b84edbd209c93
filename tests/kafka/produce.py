#!/usr/bin/env python3
"""Produce NDJSON events to Kafka with kafka-python, an independent client (not librdkafka),
keyed by center_id as SPEC §3 says, so the wire format is not only tested by jiancha's own
client. Lines that are not JSON objects are sent as they are, keyed by nothing.

usage: produce.py BROKERS TOPIC FILE
"""
import json
import sys

from kafka import KafkaProducer


def main() -> int:
    brokers, topic, path = sys.argv[1:4]
    producer = KafkaProducer(
        bootstrap_servers=brokers.split(","),
        acks="all",
        api_version=(2, 5, 0),
        linger_ms=5,
    )
    sent = 0
    with open(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                key = json.loads(line).get("center_id")
            except (ValueError, AttributeError):
                key = None
            producer.send(topic, key=key.encode() if isinstance(key, str) else None, value=line)
            sent += 1
    producer.flush(timeout=60)
    producer.close()
    print(f"produced {sent} messages to {topic}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
