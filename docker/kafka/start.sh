#!/bin/sh
# Starts the single-node Kafka of the example cluster with the settings written at build time
# (docker/kafka/configure.mjs, from scripts/lib/kafka-config.mjs): formats the KRaft storage on
# the first start, then execs the broker, so it gets the container's SIGTERM.
#   KAFKA_CLUSTER_ID         the cluster id for the first format (default: a fixed id)
#   KAFKA_EXTERNAL_ADDRESS   host:port clients outside the compose network use (default
#                            localhost:29092, the published port)
set -eu
conf=/opt/kafka/config
data=/var/lib/kafka/data
props=/var/lib/kafka/server.properties
mkdir -p "$data" /var/lib/kafka/logs
cp "$conf/server.properties" "$props"
if [ -n "${KAFKA_EXTERNAL_ADDRESS:-}" ]; then
  # java.util.Properties: the last occurrence of a key wins.
  echo "advertised.listeners=PLAINTEXT://kafka:9092,EXTERNAL://${KAFKA_EXTERNAL_ADDRESS}" >> "$props"
fi
if [ ! -f "$data/meta.properties" ]; then
  java "@$conf/format.args" kafka.tools.StorageTool format -t "${KAFKA_CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}" -c "$props"
fi
# The server log goes to files; show it on stdout too (docker logs), without holding up a stop.
touch /var/lib/kafka/logs/server.log
tail -n 0 -F /var/lib/kafka/logs/server.log 2>/dev/null &
exec java "@$conf/kafka.args" kafka.Kafka "$props"
