// A Redis for tests and demos: PING the one in REDIS_URL (or 127.0.0.1:6379), and when nothing
// answers on a local address, start redis-server (daemonized, state in $TMPDIR/idctx-redis-*,
// recorded in <cache>/redis.json so that only a server we started is ever stopped).

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
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
  sleep,
  tailFile,
  terminate,
  which,
  withLock,
  writeJsonAtomic,
} from './common.mjs';

const DEFAULT_REDIS_PORT = 6379;
const REDIS_DIR_PREFIX = 'idctx-redis-';
export const redisStateFile = () => path.join(cacheDir(), 'redis.json');

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
export function redisPing(target, timeoutMs = 2000) {
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

/** Makes sure a Redis answers PING; resolves with its URL. */
export async function ensureRedis() {
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

/** Stops a redis-server this script started (and nothing else). */
export async function stopRedis() {
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
