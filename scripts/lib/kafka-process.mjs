// The local Kafka broker process of scripts/broker.mjs: ports, storage format, a detached JVM,
// readiness, reuse of a running broker, stop. State: <cache>/broker.json and a temp dir
// $TMPDIR/idctx-kafka-XXXXXX per broker.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  cacheDir,
  CliError,
  env,
  HOST,
  log,
  pidAlive,
  processArgv,
  readJson,
  removeOwnedDir,
  secs,
  sleep,
  splitArgs,
  tailFile,
  terminate,
  withLock,
  writeJsonAtomic,
} from './common.mjs';
import { FORMAT_HEAP, javaArgs, newClusterId, serverProperties } from './kafka-config.mjs';
import { ensureKafkaLibs, javaBinary, kafkaVersion, LOG4J_FILE } from './kafka-jars.mjs';
import { probeKafka, warmUpCoordinators } from './kafka-probe.mjs';

const DEFAULT_KAFKA_PORT = 39092;
const STATE_DIR_PREFIX = 'idctx-kafka-';
const readyTimeoutMs = () => (Number(env.IDCTX_KAFKA_START_TIMEOUT) || 90) * 1000;

export const kafkaStateFile = () => path.join(cacheDir(), 'broker.json');
export const kafkaAddress = (state) => `${HOST}:${state.port}`;

// ---------------------------------------------------------------------------
// Ports, storage format, process spawn
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

const log4jOf = (stateDir) => path.join(stateDir, 'log4j.properties');

function formatStorage({ java, libs, stateDir, logsDir, propsFile }) {
  const clusterId = newClusterId();
  const args = [
    // Own log dir, so the broker's server.log (and its failure tail) is not mixed with this.
    ...javaArgs({ libs, log4jFile: log4jOf(stateDir), logsDir: path.join(logsDir, 'format'), heap: FORMAT_HEAP }),
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
  const args = [
    ...javaArgs({ libs, log4jFile: log4jOf(stateDir), logsDir }),
    ...splitArgs(env.IDCTX_KAFKA_JVM_OPTS),
    'kafka.Kafka',
    propsFile,
  ];
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
// Lifecycle
// ---------------------------------------------------------------------------

/** True if the state file describes a live process that is the broker we started. */
export function isOurBroker(state) {
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

export async function stopKafka(state) {
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
  fs.copyFileSync(LOG4J_FILE, log4jOf(stateDir));
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

/** Starts the local broker, or reuses the recorded one; resolves with its state. */
export async function startKafka() {
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

/** Stops the recorded broker (under the lock); a no-op when none is recorded. */
export async function stopRecordedKafka() {
  await withLock('broker', async () => {
    const state = readJson(kafkaStateFile());
    if (!state) {
      log('no broker recorded; nothing to stop');
      return;
    }
    await stopKafka(state);
    log('Kafka broker stopped and its state removed');
  });
}

/** The recorded broker if it is ours and answers (with its Metadata), else null. */
export async function kafkaStatus() {
  const state = readJson(kafkaStateFile());
  if (!state || !isOurBroker(state)) {
    log('Kafka broker is not running');
    return null;
  }
  try {
    const md = await probeKafka(state.port);
    log(`Kafka ${state.version} pid ${state.pid}, ${md.brokers.length} broker(s), state ${state.stateDir}`);
    return state;
  } catch (err) {
    log(`Kafka broker pid ${state.pid} is alive but not answering: ${err.message}`);
    return null;
  }
}
