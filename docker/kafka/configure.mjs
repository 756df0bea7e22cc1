// Image build step (docker/kafka/Dockerfile): the broker settings of scripts/lib/kafka-config.mjs
// — the module scripts/broker.mjs writes the local broker's settings with — as files:
//
//   <dest>/config/server.properties   containerProperties(): a KRaft node for the compose network
//   <dest>/config/log4j.properties    scripts/kafka/log4j.properties (log files in <dest>/logs)
//   <dest>/config/kafka.args          `java @kafka.args kafka.Kafka …`: heap, flags, classpath
//   <dest>/config/format.args         the same for kafka.tools.StorageTool (smaller heap)
//
// docker/kafka/start.sh formats the storage once and execs the broker with these files.
import fs from 'node:fs';
import path from 'node:path';
import { containerProperties, FORMAT_HEAP, javaArgFile, javaArgs } from '../../scripts/lib/kafka-config.mjs';

const dest = process.argv[2];
if (!dest) throw new Error('usage: node docker/kafka/configure.mjs <dest>');
const config = path.join(dest, 'config');
const libs = path.join(dest, 'libs');
const log4jFile = path.join(config, 'log4j.properties');
const logsDir = '/var/lib/kafka/logs';
fs.mkdirSync(config, { recursive: true });
fs.copyFileSync(new URL('../../scripts/kafka/log4j.properties', import.meta.url), log4jFile);
fs.writeFileSync(path.join(config, 'server.properties'), containerProperties({ dataDir: '/var/lib/kafka/data' }));
fs.writeFileSync(path.join(config, 'kafka.args'), javaArgFile(javaArgs({ libs, log4jFile, logsDir })));
fs.writeFileSync(
  path.join(config, 'format.args'),
  javaArgFile(javaArgs({ libs, log4jFile, logsDir: path.join(logsDir, 'format'), heap: FORMAT_HEAP })),
);
for (const f of fs.readdirSync(config)) console.log(`--- ${path.join(config, f)}\n${fs.readFileSync(path.join(config, f), 'utf8')}`);
