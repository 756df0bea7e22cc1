// A Docker engine for the example cluster. Uses one that answers (DOCKER_HOST or the default
// socket); otherwise installs Debian's docker.io and docker-compose when they are missing and
// starts a rootful dockerd of its own: its socket, data root and exec root under
// <cache>/docker (IDCTX_DOCKER_DIR), so images stay cached between runs on one machine and
// nothing of a system engine is touched. Records what it started in <cache>/docker/engine.json;
// stopEngine() stops only that.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  cacheDir,
  CliError,
  env,
  log,
  pidAlive,
  processArgv,
  readJson,
  secs,
  sleep,
  tailFile,
  terminate,
  which,
  withLock,
  writeJsonAtomic,
} from './common.mjs';

export const engineDir = () => (env.IDCTX_DOCKER_DIR ? path.resolve(env.IDCTX_DOCKER_DIR) : path.join(cacheDir(), 'docker'));
const engineStateFile = () => path.join(engineDir(), 'engine.json');
const ENGINE_START_TIMEOUT_MS = 90_000;

/** Runs a command to completion; resolves { status, stdout, stderr }. Output is not relayed. */
export function capture(cmd, args, { timeoutMs = 60_000, envOverride = {}, input } = {}) {
  const res = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...env, ...envOverride },
    input,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: res.status ?? (res.signal ? 128 : 1), stdout: res.stdout || '', stderr: res.stderr || '', error: res.error };
}

/** Runs a command with its output on our stderr; resolves with its exit code. */
export function relay(cmd, args, { envOverride = {}, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', process.stderr, process.stderr], env: { ...env, ...envOverride }, cwd });
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** The server version of the engine at `host` (a DOCKER_HOST value, or undefined for the default), or null. */
export function engineVersion(host) {
  if (!which('docker')) return null;
  const r = capture('docker', ['version', '--format', '{{.Server.Version}}'], {
    timeoutMs: 15_000,
    envOverride: host === undefined ? {} : { DOCKER_HOST: host },
  });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

/** apt-get update + install, as root; a no-op for packages whose commands are already there. */
export async function aptInstall(packages, why) {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new CliError(`${why}: run as root, or install ${packages.join(' ')} first (apt-get install -y ${packages.join(' ')})`);
  }
  if (!which('apt-get')) throw new CliError(`${why}: no apt-get here; install ${packages.join(' ')} yourself`);
  const t0 = Date.now();
  log(`${why}: apt-get install -y ${packages.join(' ')} ...`);
  const aptEnv = { DEBIAN_FRONTEND: 'noninteractive' };
  // Another apt may hold the lock (other jobs on the machine): apt waits for it.
  const lockWait = ['-o', 'DPkg::Lock::Timeout=300'];
  if ((await relay('apt-get', [...lockWait, 'update', '-q'], { envOverride: aptEnv })) !== 0) {
    throw new CliError('apt-get update failed');
  }
  const code = await relay('apt-get', [...lockWait, 'install', '-y', '-q', '--no-install-recommends', ...packages], { envOverride: aptEnv });
  if (code !== 0) throw new CliError(`apt-get install ${packages.join(' ')} failed (exit ${code})`);
  log(`installed ${packages.join(' ')} in ${secs(Date.now() - t0)}`);
}

/** Our recorded dockerd, if it is alive and is the dockerd we started. */
function ourEngine() {
  const state = readJson(engineStateFile());
  if (!state || !pidAlive(state.pid)) return null;
  const argv = processArgv(state.pid);
  if (argv && !(argv.some((a) => a.endsWith('dockerd')) && argv.includes(`unix://${state.socket}`))) return null;
  return state;
}

async function startDockerd() {
  const dir = engineDir();
  const socket = path.join(dir, 'docker.sock');
  const host = `unix://${socket}`;
  const dataRoot = path.join(dir, 'data');
  const execRoot = path.join(dir, 'exec');
  const pidFile = path.join(dir, 'dockerd.pid');
  const logFile = path.join(dir, 'dockerd.log');
  fs.mkdirSync(dataRoot, { recursive: true });
  fs.mkdirSync(execRoot, { recursive: true });
  // A pid file of a dockerd that died would make the next one refuse to start.
  if (fs.existsSync(pidFile)) {
    const old = Number.parseInt(fs.readFileSync(pidFile, 'utf8'), 10);
    if (pidAlive(old)) throw new CliError(`a dockerd (pid ${old}) holds ${pidFile} but does not answer on ${host}`);
    fs.rmSync(pidFile, { force: true });
  }
  fs.rmSync(socket, { force: true });
  const args = ['--host', host, '--data-root', dataRoot, '--exec-root', execRoot, '--pidfile', pidFile];
  const t0 = Date.now();
  // One log across runs, kept small: the previous one is set aside past 5 MB.
  if (fs.existsSync(logFile) && fs.statSync(logFile).size > 5 * 1024 * 1024) fs.renameSync(logFile, `${logFile}.old`);
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(which('dockerd'), args, { detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  let exited = null;
  child.once('exit', (code, signal) => {
    exited = { code, signal };
  });
  child.unref();
  const state = { pid: child.pid, socket, host, dataRoot, execRoot, logFile, startedAt: new Date().toISOString() };
  writeJsonAtomic(engineStateFile(), state);
  log(`started dockerd (pid ${child.pid}) on ${host}, data root ${dataRoot}`);
  while (Date.now() - t0 < ENGINE_START_TIMEOUT_MS) {
    if (exited) break;
    const version = engineVersion(host);
    if (version) {
      log(`Docker engine ${version} answering after ${secs(Date.now() - t0)}`);
      return { ...state, version };
    }
    await sleep(500);
  }
  if (!exited) await terminate(child.pid, 'dockerd');
  fs.rmSync(engineStateFile(), { force: true });
  throw new CliError(`dockerd did not come up (${exited ? `exit ${exited.code ?? exited.signal}` : 'timeout'}).\n${tailFile(logFile) || ''}`);
}

/**
 * Makes sure an engine answers. Resolves with `{ host, started }`: `host` for DOCKER_HOST
 * (undefined when the default engine answers), `started` when this call started dockerd.
 */
export async function ensureEngine() {
  const existing = engineVersion(env.DOCKER_HOST);
  if (existing) {
    log(`using the Docker engine ${existing} at ${env.DOCKER_HOST || 'the default socket'}`);
    return { host: env.DOCKER_HOST, started: false, version: existing };
  }
  return withLock('docker-engine', async () => {
    const ours = ourEngine();
    if (ours) {
      const version = engineVersion(ours.host);
      if (version) {
        log(`using the dockerd this script started earlier (pid ${ours.pid}, ${ours.host})`);
        return { host: ours.host, started: false, version };
      }
      await terminate(ours.pid, 'an unresponsive dockerd started earlier');
    }
    const missing = ['dockerd', 'docker', 'docker-compose'].filter((c) => !which(c));
    if (missing.length > 0) await aptInstall(['docker.io', 'docker-compose'], `no ${missing.join(', ')} on PATH`);
    const state = await startDockerd();
    return { host: state.host, started: true, version: state.version };
  });
}

/** Stops the dockerd recorded as started by these scripts (its containers stop with it). */
export async function stopEngine() {
  const state = ourEngine();
  if (!state) {
    log('no dockerd started by these scripts is running');
    fs.rmSync(engineStateFile(), { force: true });
    return;
  }
  const running = capture('docker', ['ps', '-q'], { envOverride: { DOCKER_HOST: state.host } }).stdout.trim();
  if (running) log(`dockerd still runs ${running.split('\n').length} container(s); they stop with it`);
  await terminate(state.pid, `dockerd (${state.host})`, 60_000);
  fs.rmSync(engineStateFile(), { force: true });
  log('dockerd stopped');
}
