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

import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

const SCRIPT_DIR = path.dirname(fileURLToPath(import.meta.url));
const KAFKA_ASSETS_DIR = path.join(SCRIPT_DIR, 'kafka');
const POM_FILE = path.join(KAFKA_ASSETS_DIR, 'pom.xml');
const LOG4J_FILE = path.join(KAFKA_ASSETS_DIR, 'log4j.properties');

// Newest 3.9.x on Maven Central. 3.9 is the last line that accepts every old protocol
// version (Kafka 4.0 removed many, KIP-896; kafkajs 2.2.4 is unmaintained) and it uses
// the log4j 1.x config in scripts/kafka/. See docs/broker.md before moving to 4.x.
const DEFAULT_KAFKA_VERSION = '3.9.2';
const HOST = '127.0.0.1';
const DEFAULT_KAFKA_PORT = 39092;
const DEFAULT_REDIS_PORT = 6379;
const STOP_GRACE_MS = 20_000;
const LOCK_TIMEOUT_MS = 15 * 60_000;
const STATE_DIR_PREFIX = 'idctx-kafka-';
const REDIS_DIR_PREFIX = 'idctx-redis-';
const JVM_HEAP = ['-Xmx512m', '-Xms256m'];
const JVM_FLAGS = [
  '-XX:+UseSerialGC', // single-node test broker: fewer GC threads, less RSS
  '-XX:+ExitOnOutOfMemoryError',
  '-Djava.awt.headless=true',
  '-Djava.net.preferIPv4Stack=true',
];

const env = process.env;
const kafkaVersion = () => env.IDCTX_KAFKA_VERSION || DEFAULT_KAFKA_VERSION;
const readyTimeoutMs = () => (Number(env.IDCTX_KAFKA_START_TIMEOUT) || 90) * 1000;

function cacheDir() {
  if (env.IDCTX_CACHE_DIR) return path.resolve(env.IDCTX_CACHE_DIR);
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'idctx');
}
const kafkaStateFile = () => path.join(cacheDir(), 'broker.json');
const redisStateFile = () => path.join(cacheDir(), 'redis.json');

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

class CliError extends Error {}

const log = (msg) => process.stderr.write(`[broker] ${msg}\n`);
const out = (line) => process.stdout.write(`${line}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const secs = (ms) => `${(ms / 1000).toFixed(1)}s`;

function splitArgs(value) {
  return (value || '').split(/\s+/).filter(Boolean);
}

function shellQuote(value) {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

function which(cmd) {
  for (const dir of (env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, cmd);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      /* not here */
    }
  }
  return null;
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

function writeJsonAtomic(file, data) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

function tailFile(file, lines = 40) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n').trimEnd();
  } catch {
    return null;
  }
}

function pidAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return err.code === 'EPERM';
  }
  // A zombie still answers kill(0); treat it as dead.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true;
  }
}

/** argv of a process, or null when it cannot be inspected (non-Linux). */
function processArgv(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return null;
  }
}

async function waitForExit(pid, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return true;
    await sleep(100);
  }
  return !pidAlive(pid);
}

async function terminate(pid, what) {
  if (!pidAlive(pid)) return;
  log(`stopping ${what} (pid ${pid}) ...`);
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
  if (await waitForExit(pid, STOP_GRACE_MS)) return;
  log(`${what} did not exit within ${secs(STOP_GRACE_MS)}; sending SIGKILL`);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
  if (!(await waitForExit(pid, 5000))) throw new CliError(`could not kill ${what} (pid ${pid})`);
}

/** Deletes a temp dir created by this script; refuses anything else. */
function removeOwnedDir(dir, prefix) {
  if (!dir || !path.isAbsolute(dir) || !path.basename(dir).startsWith(prefix)) {
    if (dir) log(`not deleting ${dir}: not a directory created by this script`);
    return;
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------
// Cross-process lock (parallel test runners may all call `start` at once)
// ---------------------------------------------------------------------------

async function withLock(name, fn) {
  const file = path.join(cacheDir(), `${name}.lock`);
  fs.mkdirSync(cacheDir(), { recursive: true });
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  let announced = false;
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    const holder = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    if (!pidAlive(holder)) {
      fs.rmSync(file, { force: true }); // stale lock from a dead process
      continue;
    }
    if (Date.now() > deadline) throw new CliError(`timed out waiting for ${file} (held by pid ${holder})`);
    if (!announced) log(`waiting for another broker.mjs (pid ${holder}) to finish ...`);
    announced = true;
    await sleep(250);
  }
  const release = () => {
    try {
      if (fs.readFileSync(file, 'utf8') === String(process.pid)) fs.rmSync(file, { force: true });
    } catch {
      /* already gone */
    }
  };
  process.once('exit', release);
  try {
    return await fn();
  } finally {
    release();
    process.removeListener('exit', release);
  }
}

// ---------------------------------------------------------------------------
// Kafka wire protocol (just enough for a readiness probe)
// ---------------------------------------------------------------------------

const API_METADATA = 3;
const API_VERSIONS = 18;

class Reader {
  constructor(buf) {
    this.buf = buf;
    this.pos = 0;
  }
  int16() {
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32() {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  string() {
    const len = this.int16();
    if (len < 0) return null;
    const v = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return v;
  }
}

function encodeRequest(apiKey, apiVersion, correlationId, body) {
  const clientId = Buffer.from('idctx-broker-probe');
  // Request header v1: api_key INT16, api_version INT16, correlation_id INT32, client_id STRING
  const header = Buffer.alloc(10);
  header.writeInt16BE(apiKey, 0);
  header.writeInt16BE(apiVersion, 2);
  header.writeInt32BE(correlationId, 4);
  header.writeInt16BE(clientId.length, 8);
  const size = Buffer.alloc(4);
  size.writeInt32BE(header.length + clientId.length + body.length, 0);
  return Buffer.concat([size, header, clientId, body]);
}

/** Sends one request on a fresh connection; resolves with the response body. */
function kafkaRequest({ host, port, apiKey, apiVersion, body = Buffer.alloc(0), timeoutMs = 3000 }) {
  const correlationId = crypto.randomInt(1, 2 ** 31 - 1);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let chunks = Buffer.alloc(0);
    const fail = (err) => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no response from ${host}:${port} within ${timeoutMs}ms`)));
    socket.once('error', fail);
    socket.once('connect', () => socket.write(encodeRequest(apiKey, apiVersion, correlationId, body)));
    socket.on('data', (data) => {
      chunks = Buffer.concat([chunks, data]);
      if (chunks.length < 4) return;
      const size = chunks.readInt32BE(0);
      if (size < 4 || size > 16 * 1024 * 1024) return fail(new Error(`not a Kafka response (frame size ${size})`));
      if (chunks.length < 4 + size) return;
      socket.destroy();
      const gotId = chunks.readInt32BE(4); // response header v0: correlation_id
      if (gotId !== correlationId) return reject(new Error(`correlation id mismatch (${gotId} != ${correlationId})`));
      resolve(chunks.subarray(8, 4 + size));
    });
    socket.once('end', () => fail(new Error(`connection closed by ${host}:${port}`)));
  });
}

/** ApiVersions v0 -> Map(apiKey -> {min, max}). */
async function apiVersions(host, port) {
  const r = new Reader(await kafkaRequest({ host, port, apiKey: API_VERSIONS, apiVersion: 0 }));
  const errorCode = r.int16();
  if (errorCode !== 0) throw new Error(`ApiVersions error code ${errorCode}`);
  const apis = new Map();
  for (let n = r.int32(); n > 0; n--) {
    const key = r.int16();
    apis.set(key, { min: r.int16(), max: r.int16() });
  }
  return apis;
}

/** Metadata v1 for no topics -> { brokers: [{nodeId, host, port}], controllerId }. */
async function metadata(host, port) {
  const body = Buffer.alloc(4); // topics: empty array (v1+: "no topics", null would be "all")
  const r = new Reader(await kafkaRequest({ host, port, apiKey: API_METADATA, apiVersion: 1, body }));
  const brokers = [];
  for (let n = r.int32(); n > 0; n--) {
    const broker = { nodeId: r.int32(), host: r.string(), port: r.int32() };
    r.string(); // rack
    brokers.push(broker);
  }
  return { brokers, controllerId: r.int32() };
}

const API_FIND_COORDINATOR = 10;
const API_DESCRIBE_GROUPS = 15;
const API_INIT_PRODUCER_ID = 22;
const WARMUP_ID = 'idctx-broker-warmup';

function stringField(value) {
  const bytes = Buffer.from(value);
  const buf = Buffer.alloc(2 + bytes.length);
  buf.writeInt16BE(bytes.length, 0);
  bytes.copy(buf, 2);
  return buf;
}

function int32Field(value) {
  const buf = Buffer.alloc(4);
  buf.writeInt32BE(value, 0);
  return buf;
}

/** Each returns a Kafka error code (0 = ok). */
const coordinatorChecks = {
  // FindCoordinator v1 (key, key_type) auto-creates __consumer_offsets / __transaction_state.
  async findGroupCoordinator(port) {
    const body = Buffer.concat([stringField(WARMUP_ID), Buffer.from([0])]);
    const r = new Reader(await kafkaRequest({ host: HOST, port, apiKey: API_FIND_COORDINATOR, apiVersion: 1, body }));
    r.int32(); // throttle_time_ms
    return r.int16();
  },
  async findTxnCoordinator(port) {
    const body = Buffer.concat([stringField(WARMUP_ID), Buffer.from([1])]);
    const r = new Reader(await kafkaRequest({ host: HOST, port, apiKey: API_FIND_COORDINATOR, apiVersion: 1, body }));
    r.int32();
    return r.int16();
  },
  // DescribeGroups v0 answers COORDINATOR_LOAD_IN_PROGRESS until the offsets partition is loaded.
  async groupCoordinatorLoaded(port) {
    const body = Buffer.concat([int32Field(1), stringField(WARMUP_ID)]);
    const r = new Reader(await kafkaRequest({ host: HOST, port, apiKey: API_DESCRIBE_GROUPS, apiVersion: 0, body }));
    r.int32(); // groups array length
    return r.int16();
  },
  // InitProducerId v0 for a transactional id succeeds once the txn state partition is loaded.
  async txnCoordinatorLoaded(port) {
    const body = Buffer.concat([stringField(WARMUP_ID), int32Field(60_000)]);
    const r = new Reader(await kafkaRequest({ host: HOST, port, apiKey: API_INIT_PRODUCER_ID, apiVersion: 0, body }));
    r.int32();
    return r.int16();
  },
};

/**
 * Makes the broker create and load __consumer_offsets and __transaction_state now, so the
 * first consumer group / transactional producer in a test does not spend time in
 * COORDINATOR_NOT_AVAILABLE / COORDINATOR_LOAD_IN_PROGRESS retries. Best effort.
 */
async function warmUpCoordinators(port, timeoutMs = 20_000) {
  const t0 = Date.now();
  for (const [name, check] of Object.entries(coordinatorChecks)) {
    let last = '';
    for (;;) {
      try {
        const code = await check(port);
        if (code === 0) break;
        last = `error code ${code}`;
      } catch (err) {
        last = err.message;
      }
      if (Date.now() - t0 > timeoutMs) {
        log(`warning: ${name} not ok after ${secs(timeoutMs)} (${last}); continuing`);
        return;
      }
      await sleep(100);
    }
  }
  log(`group + transaction coordinators ready in ${secs(Date.now() - t0)}`);
}

/** Resolves when the broker answers ApiVersions and lists itself in Metadata; throws otherwise. */
async function probeKafka(port) {
  const apis = await apiVersions(HOST, port);
  if (!apis.has(API_METADATA)) throw new Error('ApiVersions response lacks Metadata');
  const md = await metadata(HOST, port);
  const self = md.brokers.find((b) => b.port === port);
  if (!self) throw new Error(`Metadata lists no broker on port ${port} yet`);
  return { apis, ...md };
}

// ---------------------------------------------------------------------------
// Kafka jars (Maven) and Java
// ---------------------------------------------------------------------------

function kafkaHome(version) {
  return path.join(cacheDir(), `kafka-${version}`);
}

function libsAreComplete(version) {
  const home = kafkaHome(version);
  return (
    fs.existsSync(path.join(home, '.complete')) &&
    fs.existsSync(path.join(home, 'libs', `kafka_2.13-${version}.jar`))
  );
}

/**
 * Runs a tool, relaying its output to our stderr (stdout carries only the result line).
 * ANSI codes are stripped: Debian's Maven 3.8 emits stray "\e[0m" even with -q -B.
 */
function runToStderr(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const relay = (chunk) => {
      const text = chunk.toString().replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
      if (text.trim()) process.stderr.write(text);
    };
    child.stdout.on('data', relay);
    child.stderr.on('data', relay);
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? signal));
  });
}

/** Downloads kafka_2.13:<version> + runtime deps into <cache>/kafka-<version>/libs once. */
async function ensureKafkaLibs(version) {
  const home = kafkaHome(version);
  const libs = path.join(home, 'libs');
  if (libsAreComplete(version)) return libs;

  const mvn = which('mvn');
  if (!mvn) {
    throw new CliError(
      `Kafka ${version} jars are not cached in ${libs} and Maven is not on PATH.\n` +
        '  Install Maven (apt-get install maven) so they can be downloaded from Maven Central.',
    );
  }
  fs.mkdirSync(home, { recursive: true });
  const tmp = path.join(home, `libs.tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  log(`downloading Kafka ${version} jars with Maven into ${libs} (first run only) ...`);
  const t0 = Date.now();
  const args = [
    '-q',
    '-B',
    '-Dstyle.color=never',
    '-f',
    POM_FILE,
    'dependency:copy-dependencies',
    '-DincludeScope=runtime',
    `-DoutputDirectory=${tmp}`,
    `-Dkafka.version=${version}`,
    ...splitArgs(env.IDCTX_MAVEN_ARGS),
  ];
  const result = await runToStderr(mvn, args);
  if (result !== 0 || !fs.existsSync(path.join(tmp, `kafka_2.13-${version}.jar`))) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new CliError(
      `Maven failed to resolve org.apache.kafka:kafka_2.13:${version} (exit ${result}).\n` +
        `  Re-run: mvn -B -f ${POM_FILE} dependency:copy-dependencies -DincludeScope=runtime ` +
        `-DoutputDirectory=/tmp/kafka-libs -Dkafka.version=${version}`,
    );
  }
  fs.rmSync(libs, { recursive: true, force: true });
  fs.renameSync(tmp, libs);
  const jars = fs.readdirSync(libs).filter((f) => f.endsWith('.jar')).sort();
  writeJsonAtomic(path.join(home, '.complete'), { version, jars, downloadedAt: new Date().toISOString() });
  log(`downloaded ${jars.length} jars in ${secs(Date.now() - t0)}`);
  return libs;
}

function javaBinary() {
  const java = env.JAVA_HOME ? path.join(env.JAVA_HOME, 'bin', 'java') : which('java');
  const res = java ? spawnSync(java, ['-version'], { encoding: 'utf8' }) : null;
  if (!res || res.status !== 0) {
    throw new CliError(
      'Java is required to run the Kafka broker (Java 17 recommended, 11+ works).\n' +
        '  Install it (apt-get install openjdk-17-jre-headless) or set JAVA_HOME.',
    );
  }
  const m = /version "(\d+)(?:\.(\d+))?/.exec(res.stderr || '');
  const major = m ? (m[1] === '1' ? Number(m[2]) : Number(m[1])) : 0;
  if (major && major < 11) throw new CliError(`Kafka 3.9 needs Java 11+, found Java ${major} at ${java}`);
  return java;
}

// ---------------------------------------------------------------------------
// Ports, properties, storage format, process spawn
// ---------------------------------------------------------------------------

function portIsFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: HOST, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function ephemeralPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ port: 0, host: HOST, exclusive: true }, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function choosePorts({ forceRandom = false } = {}) {
  const requested = Number.parseInt(env.IDCTX_KAFKA_PORT, 10) || DEFAULT_KAFKA_PORT;
  const requestedController = Number.parseInt(env.IDCTX_KAFKA_CONTROLLER_PORT, 10) || requested + 1;
  if (!forceRandom && (await portIsFree(requested)) && (await portIsFree(requestedController))) {
    return { port: requested, controllerPort: requestedController };
  }
  log(`port ${requested} or ${requestedController} is in use by something else; picking free ports`);
  for (;;) {
    const port = await ephemeralPort();
    const controllerPort = await ephemeralPort();
    if (port !== controllerPort) return { port, controllerPort };
  }
}

function serverProperties({ port, controllerPort, dataDir }) {
  const props = {
    // Single combined KRaft node.
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@${HOST}:${controllerPort}`,
    listeners: `PLAINTEXT://${HOST}:${port},CONTROLLER://${HOST}:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${HOST}:${port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': dataDir,
    // Single-replica everything.
    'num.partitions': 1,
    'default.replication.factor': 1,
    'min.insync.replicas': 1,
    'offsets.topic.replication.factor': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'auto.create.topics.enable': true,
    'delete.topic.enable': true,
    // Fast for tests: no join delay, 1-partition internal topics (defaults: 50 each,
    // which makes the first consumer group / transaction noticeably slower).
    'group.initial.rebalance.delay.ms': 0,
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.num.partitions': 1,
    // Light: few threads, small cleaner buffer (default 128 MiB of heap), no rebalancer.
    'num.network.threads': 2,
    'num.io.threads': 2,
    'background.threads': 2,
    'num.recovery.threads.per.data.dir': 1,
    'num.replica.fetchers': 1,
    'log.cleaner.threads': 1,
    'log.cleaner.dedupe.buffer.size': 8 * 1024 * 1024,
    'auto.leader.rebalance.enable': false,
    // Ephemeral data: small segments, short retention.
    'log.segment.bytes': 64 * 1024 * 1024,
    'log.retention.hours': 24,
  };
  const lines = Object.entries(props).map(([k, v]) => `${k}=${v}`);
  return `# Generated by scripts/broker.mjs - local single-node test broker\n${lines.join('\n')}\n`;
}

/** 16 random bytes as 22-char unpadded base64url, never starting with '-' (like Uuid.randomUuid). */
function newClusterId() {
  for (;;) {
    const id = crypto.randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function javaArgs({ libs, stateDir, logsDir, heap = JVM_HEAP }) {
  return [
    ...heap,
    ...JVM_FLAGS,
    `-Dlog4j.configuration=${pathToFileURL(path.join(stateDir, 'log4j.properties')).href}`,
    `-Dkafka.logs.dir=${logsDir}`,
    '-cp',
    path.join(libs, '*'),
  ];
}

function formatStorage({ java, libs, stateDir, logsDir, propsFile }) {
  const clusterId = newClusterId();
  const args = [
    // Own log dir, so the broker's server.log (and its failure tail) is not mixed with this.
    ...javaArgs({ libs, stateDir, logsDir: path.join(logsDir, 'format'), heap: ['-Xmx256m'] }),
    'kafka.tools.StorageTool',
    'format',
    '-t',
    clusterId,
    '-c',
    propsFile,
  ];
  const res = spawnSync(java, args, { cwd: stateDir, encoding: 'utf8' });
  if (res.status !== 0) {
    throw new CliError(
      `kafka.tools.StorageTool format failed (exit ${res.status}):\n${res.stdout || ''}${res.stderr || ''}`,
    );
  }
  return clusterId;
}

function spawnBroker({ java, libs, stateDir, logsDir, propsFile }) {
  const outFile = path.join(logsDir, 'broker.out');
  const fd = fs.openSync(outFile, 'a');
  const args = [...javaArgs({ libs, stateDir, logsDir }), ...splitArgs(env.IDCTX_KAFKA_JVM_OPTS), 'kafka.Kafka', propsFile];
  const child = spawn(java, args, { cwd: stateDir, detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  child.exitInfo = null;
  child.once('exit', (code, signal) => {
    child.exitInfo = { code, signal };
  });
  child.unref();
  return child;
}

function brokerLogTail(stateDir) {
  const parts = [];
  for (const name of ['broker.out', 'server.log']) {
    const tail = tailFile(path.join(stateDir, 'logs', name));
    if (tail) parts.push(`--- ${name} (tail) ---\n${tail}`);
  }
  return parts.join('\n') || '(no broker log output)';
}

// ---------------------------------------------------------------------------
// Kafka broker lifecycle
// ---------------------------------------------------------------------------

/** True if the state file describes a live process that is the broker we started. */
function isOurBroker(state) {
  if (!state || !pidAlive(state.pid)) return false;
  const argv = processArgv(state.pid);
  if (!argv) return true; // cannot inspect (non-Linux): rely on the protocol probe
  return argv.includes('kafka.Kafka') && argv.some((a) => a.startsWith(state.stateDir));
}

async function waitUntilReady({ port, pid, child, stateDir, timeoutMs }) {
  const t0 = Date.now();
  let lastError = 'not probed yet';
  while (Date.now() - t0 < timeoutMs) {
    const exited = child ? child.exitInfo : pidAlive(pid) ? null : { code: '?', signal: null };
    if (exited) {
      throw new CliError(
        `Kafka broker exited during startup (code ${exited.code}, signal ${exited.signal}).\n${brokerLogTail(stateDir)}`,
      );
    }
    try {
      return await probeKafka(port);
    } catch (err) {
      lastError = err.message;
    }
    await sleep(200);
  }
  throw new CliError(
    `Kafka broker on ${HOST}:${port} not ready after ${secs(timeoutMs)} (last probe: ${lastError}).\n${brokerLogTail(stateDir)}`,
  );
}

async function stopKafka(state) {
  if (!state) return;
  if (isOurBroker(state)) {
    await terminate(state.pid, `Kafka broker on ${HOST}:${state.port}`);
  } else if (pidAlive(state.pid)) {
    log(`pid ${state.pid} is alive but is not the broker we started; leaving it alone`);
  }
  removeOwnedDir(state.stateDir, STATE_DIR_PREFIX);
  fs.rmSync(kafkaStateFile(), { force: true });
}

/** Returns a ready recorded broker, or null after cleaning up whatever is left of it. */
async function reusableBroker() {
  const state = readJson(kafkaStateFile());
  if (!state) return null;
  if (isOurBroker(state)) {
    try {
      await probeKafka(state.port);
      return state;
    } catch {
      // Maybe an interrupted `start` left it still booting: give it a little time.
      log(`recorded broker (pid ${state.pid}) is not answering yet; waiting briefly ...`);
      try {
        await waitUntilReady({ port: state.port, pid: state.pid, stateDir: state.stateDir, timeoutMs: 30_000 });
        return state;
      } catch (err) {
        log(`recorded broker is unhealthy, restarting it:\n${err.message}`);
      }
    }
  } else {
    log('removing stale broker state (recorded process is gone)');
  }
  await stopKafka(state);
  return null;
}

async function launchBroker({ version, libs, java, forceRandomPorts }) {
  const { port, controllerPort } = await choosePorts({ forceRandom: forceRandomPorts });
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), STATE_DIR_PREFIX));
  const logsDir = path.join(stateDir, 'logs');
  const dataDir = path.join(stateDir, 'data');
  const propsFile = path.join(stateDir, 'server.properties');
  fs.mkdirSync(logsDir, { recursive: true });
  fs.copyFileSync(LOG4J_FILE, path.join(stateDir, 'log4j.properties'));
  fs.writeFileSync(propsFile, serverProperties({ port, controllerPort, dataDir }));

  const ctx = { java, libs, stateDir, logsDir, propsFile };
  const tFormat = Date.now();
  let clusterId;
  try {
    clusterId = formatStorage(ctx);
  } catch (err) {
    removeOwnedDir(stateDir, STATE_DIR_PREFIX);
    throw err;
  }
  log(`formatted KRaft storage in ${secs(Date.now() - tFormat)} (cluster id ${clusterId})`);

  const tSpawn = Date.now();
  const child = spawnBroker(ctx);
  const state = {
    pid: child.pid,
    port,
    controllerPort,
    stateDir,
    version,
    clusterId,
    logFile: path.join(logsDir, 'server.log'),
    startedAt: new Date().toISOString(),
  };
  writeJsonAtomic(kafkaStateFile(), state); // early, so `stop` can clean up an interrupted start
  log(`spawned Kafka ${version} (pid ${child.pid}) on ${HOST}:${port}, controller ${controllerPort}, state ${stateDir}`);
  try {
    await waitUntilReady({ port, child, stateDir, timeoutMs: readyTimeoutMs() });
  } catch (err) {
    const saved = path.join(cacheDir(), 'last-failed-broker.log');
    try {
      fs.copyFileSync(path.join(logsDir, 'server.log'), saved);
    } catch {
      /* no log */
    }
    await stopKafka(state);
    err.addressInUse = /Address already in use|BindException/.test(err.message);
    err.message += `\n(broker log saved to ${saved})`;
    throw err;
  }
  state.readyMs = Date.now() - tSpawn;
  log(`Kafka answering in ${secs(state.readyMs)} after spawn`);
  await warmUpCoordinators(port);
  state.warmMs = Date.now() - tSpawn;
  writeJsonAtomic(kafkaStateFile(), state);
  return state;
}

async function startKafka() {
  const t0 = Date.now();
  return withLock('broker', async () => {
    const existing = await reusableBroker();
    if (existing) {
      log(`reusing running Kafka ${existing.version} broker (pid ${existing.pid}) on ${HOST}:${existing.port}`);
      return existing;
    }
    const version = kafkaVersion();
    if (!version.startsWith('3.')) log(`warning: Kafka ${version} is untested here (log4j2, KIP-896); see docs/broker.md`);
    const libs = await ensureKafkaLibs(version);
    const java = javaBinary();
    let state;
    try {
      state = await launchBroker({ version, libs, java, forceRandomPorts: false });
    } catch (err) {
      if (!err.addressInUse) throw err;
      log('port got taken while starting; retrying once on random free ports');
      state = await launchBroker({ version, libs, java, forceRandomPorts: true });
    }
    log(`start took ${secs(Date.now() - t0)} in total`);
    return state;
  });
}

// ---------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------

function redisTarget() {
  if (env.REDIS_URL) {
    const u = new URL(env.REDIS_URL);
    return {
      url: env.REDIS_URL,
      host: u.hostname.replace(/^\[|\]$/g, '') || HOST,
      port: Number(u.port) || DEFAULT_REDIS_PORT,
      username: decodeURIComponent(u.username || ''),
      password: decodeURIComponent(u.password || ''),
      tls: u.protocol === 'rediss:',
      fromEnv: 'REDIS_URL',
    };
  }
  const port = Number.parseInt(env.IDCTX_REDIS_PORT, 10) || DEFAULT_REDIS_PORT;
  return { url: `redis://${HOST}:${port}`, host: HOST, port, username: '', password: '', tls: false };
}

function resp(...args) {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** Raw RESP PING (after AUTH when the URL has credentials). Resolves 'PONG' or rejects. */
function redisPing(target, timeoutMs = 2000) {
  const commands = [];
  if (target.password) {
    commands.push(target.username ? resp('AUTH', target.username, target.password) : resp('AUTH', target.password));
  }
  commands.push(resp('PING'));
  return new Promise((resolve, reject) => {
    const opts = { host: target.host, port: target.port };
    const socket = target.tls ? tls.connect({ ...opts, servername: target.host }) : net.connect(opts);
    let buffer = '';
    const done = (err, value) => {
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    socket.setTimeout(timeoutMs, () => done(Object.assign(new Error('timed out waiting for PONG'), { answered: buffer.length > 0 })));
    socket.once('error', (err) => done(err));
    socket.once(target.tls ? 'secureConnect' : 'connect', () => socket.write(commands.join('')));
    socket.on('data', (data) => {
      buffer += data.toString('latin1');
      const replies = buffer.split('\r\n').slice(0, -1);
      if (replies.length < commands.length) return;
      const bad = replies.find((r) => r.startsWith('-'));
      if (bad) return done(Object.assign(new Error(`Redis replied: ${bad.slice(1)}`), { answered: true }));
      const last = replies[commands.length - 1];
      if (last === '+PONG') return done(null, 'PONG');
      done(Object.assign(new Error(`unexpected reply to PING: ${JSON.stringify(last)}`), { answered: true }));
    });
  });
}

const isLoopback = (host) => ['127.0.0.1', 'localhost', '::1'].includes(host);

async function startRedisServer(target, redisServer) {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), REDIS_DIR_PREFIX));
  const pidFile = path.join(stateDir, 'redis.pid');
  const logFile = path.join(stateDir, 'redis.log');
  const args = ['--port', String(target.port), '--bind', HOST, '--save', '', '--appendonly', 'no'];
  args.push('--daemonize', 'yes', '--dir', stateDir, '--pidfile', pidFile, '--logfile', logFile);
  if (target.password) args.push('--requirepass', target.password);
  log(`starting ${redisServer} on ${HOST}:${target.port} (state ${stateDir}) ...`);
  const res = spawnSync(redisServer, args, { encoding: 'utf8' });
  if (res.status !== 0) {
    removeOwnedDir(stateDir, REDIS_DIR_PREFIX);
    throw new CliError(`redis-server failed to start (exit ${res.status}): ${res.stderr || res.stdout}`);
  }
  const deadline = Date.now() + 15_000;
  let lastError;
  while (Date.now() < deadline) {
    try {
      await redisPing({ ...target, host: HOST });
      const pid = Number.parseInt(fs.readFileSync(pidFile, 'utf8'), 10);
      writeJsonAtomic(redisStateFile(), { pid, port: target.port, stateDir, startedAt: new Date().toISOString() });
      log(`redis-server ready (pid ${pid})`);
      return;
    } catch (err) {
      lastError = err.message;
    }
    await sleep(100);
  }
  throw new CliError(`redis-server did not answer PING (${lastError}).\n${tailFile(logFile) || ''}`);
}

async function ensureRedis() {
  const target = redisTarget();
  try {
    await redisPing(target);
    log(`Redis answers PING at ${target.host}:${target.port}`);
    return target.url;
  } catch (err) {
    if (err.answered) {
      throw new CliError(
        `something on ${target.host}:${target.port} answered but PING failed (${err.message}).\n` +
          '  Set REDIS_URL (with credentials if needed) to a Redis you can use.',
      );
    }
    log(`no Redis at ${target.host}:${target.port} (${err.code || err.message})`);
  }
  if (!isLoopback(target.host) || target.tls) {
    throw new CliError(`REDIS_URL=${target.url} is not reachable; start that Redis or unset REDIS_URL.`);
  }
  const redisServer = which('redis-server');
  if (!redisServer) {
    throw new CliError(
      `No Redis answers on ${target.host}:${target.port} and redis-server is not on PATH.\n` +
        '  Install redis-server (apt-get install redis-server) or set REDIS_URL to a reachable Redis.',
    );
  }
  await withLock('redis', async () => {
    try {
      await redisPing(target); // someone else may have started it meanwhile
    } catch {
      await startRedisServer(target, redisServer);
    }
  });
  return target.url;
}

async function stopRedis() {
  const state = readJson(redisStateFile());
  if (!state) {
    log('no redis-server started by this script is recorded');
    return;
  }
  const argv = processArgv(state.pid);
  if (pidAlive(state.pid) && (!argv || argv.some((a) => a.includes('redis-server')))) {
    await terminate(state.pid, `redis-server on ${HOST}:${state.port}`);
  }
  removeOwnedDir(state.stateDir, REDIS_DIR_PREFIX);
  fs.rmSync(redisStateFile(), { force: true });
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

const kafkaAddress = (state) => `${HOST}:${state.port}`;

const commands = {
  async start() {
    const state = await startKafka();
    out(`KAFKA_BROKERS=${kafkaAddress(state)}`);
  },

  async stop() {
    await withLock('broker', async () => {
      const state = readJson(kafkaStateFile());
      if (!state) {
        log('no broker recorded; nothing to stop');
        return;
      }
      await stopKafka(state);
      log('Kafka broker stopped and its state removed');
    });
  },

  async status() {
    const state = readJson(kafkaStateFile());
    if (!state || !isOurBroker(state)) {
      log('Kafka broker is not running');
      return 1;
    }
    try {
      const md = await probeKafka(state.port);
      log(`Kafka ${state.version} pid ${state.pid}, ${md.brokers.length} broker(s), state ${state.stateDir}`);
      out(`KAFKA_BROKERS=${kafkaAddress(state)}`);
      return 0;
    } catch (err) {
      log(`Kafka broker pid ${state.pid} is alive but not answering: ${err.message}`);
      return 1;
    }
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

async function main(argv) {
  const name = argv[0];
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    process.stderr.write(`${usage()}\n`);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`unknown command: ${name}\n\n${usage()}\n`);
    return 2;
  }
  return (await command()) ?? 0;
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => process.exit(130)); // runs 'exit' handlers (lock release)
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    log(err instanceof CliError ? `error: ${err.message}` : `unexpected error: ${err.stack || err}`);
    process.exitCode = 1;
  },
);
