#!/bin/bash
# Healthy when the broker finds a group coordinator: a Kafka FindCoordinator v0 request on 9092
# answered with error code 0. That creates and loads __consumer_offsets, as the warm-up of
# scripts/lib/kafka-probe.mjs does, so the services' consumer groups join at once. bash
# (/dev/tcp) only, no JVM per check.
set -eu
exec 3<>/dev/tcp/127.0.0.1/9092
# size 29 | api_key 10 | api_version 0 | correlation_id 7 | client_id "" | key "idctx-healthcheck" (17)
printf '\x00\x00\x00\x1d\x00\x0a\x00\x00\x00\x00\x00\x07\x00\x00\x00\x11idctx-healthcheck' >&3
reply=$(timeout 4 head -c 10 <&3 | od -An -tx1 | tr -d ' \n')
exec 3>&-
# 4 bytes size, correlation_id 7, error_code 0
[ "${reply:8:12}" = "000000070000" ]
