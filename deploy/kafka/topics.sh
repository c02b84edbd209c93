#!/usr/bin/env bash
# Create jiancha's Kafka topics with their partitions, retention and compaction. Idempotent
# (--if-not-exists). Used by the Compose file and the Kubernetes Job; by hand:
#   BOOTSTRAP=kafka-0:9092 REPLICATION_FACTOR=3 deploy/kafka/topics.sh
# KAFKA_TOPICS is Apache Kafka's kafka-topics.sh (in the apache/kafka image:
# /opt/kafka/bin/kafka-topics.sh). Topic names are the defaults of [kafka] in jiancha.toml.
set -euo pipefail
bootstrap=${BOOTSTRAP:-127.0.0.1:9092}
rf=${REPLICATION_FACTOR:-1}
kafka_topics=${KAFKA_TOPICS:-kafka-topics.sh}
# The events topic's partitions bound the number of ingest processes (one engine per
# partition, several partitions per process); a centre's events stay in one partition.
events_partitions=${EVENTS_PARTITIONS:-12}
day=86400000
# With replicas, acks=all waits for two of them: a broker may fail without losing an event.
isr=$(( rf > 1 ? 2 : 1 ))

create() {
  local name=$1 partitions=$2
  shift 2
  "$kafka_topics" --bootstrap-server "$bootstrap" --create --if-not-exists \
    --topic "$name" --partitions "$partitions" --replication-factor "$rf" \
    --config "min.insync.replicas=$isr" "$@"
  echo "topic $name: $partitions partitions $*"
}

# Input log (key center_id). Deleted after 30 days: a new owner replays from its partition's
# last checkpoint (at most checkpoint_seconds back), and raw events are kept in ClickHouse.
create jiancha.events "$events_partitions" \
  --config cleanup.policy=delete --config "retention.ms=$((30 * day))"
# Alerts (key alert_id; a retraction follows its firing under the same key). Compacted: the
# latest line per alert survives; deleted after 30 days (ClickHouse is the record).
create jiancha.alerts "${ALERTS_PARTITIONS:-6}" \
  --config cleanup.policy=compact,delete --config "retention.ms=$((30 * day))"
# Live window status (key window_id): only the latest matters.
create jiancha.window-status "${STATUS_PARTITIONS:-3}" \
  --config cleanup.policy=compact --config "min.compaction.lag.ms=$((60 * 60 * 1000))"
# Inspector actions (key alert_id): an audit trail, every entry counts, never compacted.
create jiancha.alert-actions "${ACTIONS_PARTITIONS:-3}" \
  --config cleanup.policy=delete --config "retention.ms=$((30 * day))"
# Invalid input, for people to look at; kept longer.
create jiancha.dead-letter 1 \
  --config cleanup.policy=delete --config "retention.ms=$((90 * day))"
