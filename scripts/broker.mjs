#!/usr/bin/env node
// Local Apache Kafka (KRaft, single combined node) + Redis for tests and demos.
//
//   node scripts/broker.mjs start    # idempotent; prints KAFKA_BROKERS=127.0.0.1:<port>
//   node scripts/broker.mjs status   # prints the address, exit 0 if running, 1 otherwise
//   node scripts/broker.mjs stop     # stops the broker and deletes its temp state
//   node scripts/broker.mjs env      # start + redis, prints `export ...` lines for eval
//   node scripts/broker.mjs redis    # ensures a Redis answers PING; prints REDIS_URL=...
//   node scripts/broker.mjs stop-redis  # stops a redis-server this script started
//
// Dependency-free (node: built-ins only). Kafka jars are fetched once with Maven
// (scripts/kafka/pom.xml) into a cache outside the repo. Only the machine-readable
// result goes to stdout; all progress and diagnostics go to stderr.
// See docs/broker.md.
//
// One module per concern, in scripts/lib/: kafka-jars.mjs (the jars, Java), kafka-config.mjs
// (server.properties and the JVM command line, shared with the Kafka image in docker/kafka/),
// kafka-process.mjs (ports, format, spawn, reuse, stop), kafka-probe.mjs (wire-protocol
// readiness), redis.mjs, common.mjs (cache dir, logging, processes, lock).

import { out, runCli, shellQuote } from './lib/common.mjs';
import { kafkaAddress, kafkaStatus, startKafka, stopRecordedKafka } from './lib/kafka-process.mjs';
import { ensureRedis, stopRedis } from './lib/redis.mjs';

const commands = {
  async start() {
    const state = await startKafka();
    out(`KAFKA_BROKERS=${kafkaAddress(state)}`);
  },

  async stop() {
    await stopRecordedKafka();
  },

  async status() {
    const state = await kafkaStatus();
    if (!state) return 1;
    out(`KAFKA_BROKERS=${kafkaAddress(state)}`);
    return 0;
  },

  async env() {
    const state = await startKafka();
    out(`export KAFKA_BROKERS=${shellQuote(kafkaAddress(state))}`);
    const url = await ensureRedis();
    out(`export REDIS_URL=${shellQuote(url)}`);
  },

  async redis() {
    out(`REDIS_URL=${await ensureRedis()}`);
  },

  async 'stop-redis'() {
    await stopRedis();
  },
};

function usage() {
  return [
    'usage: node scripts/broker.mjs <command>',
    '',
    '  start       start (or reuse) the local Kafka broker; prints KAFKA_BROKERS=host:port',
    '  status      print KAFKA_BROKERS=host:port and exit 0 if running, exit 1 otherwise',
    '  stop        stop the broker and delete its temp state',
    '  env         start Kafka + ensure Redis; print `export ...` lines for eval',
    '  redis       ensure a Redis answers PING (start redis-server if needed); print REDIS_URL=...',
    '  stop-redis  stop a redis-server started by this script',
    '',
    'See docs/broker.md for environment variables.',
  ].join('\n');
}

runCli(commands, usage);
