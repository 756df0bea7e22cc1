// Small helpers shared by the broker scripts (scripts/broker.mjs) and the Docker scripts
// (scripts/docker.mjs): the cache directory, logging to stderr, processes, files and a
// cross-process lock. Node built-ins only.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const env = process.env;
/** Loopback address every local service binds and every probe dials. */
export const HOST = '127.0.0.1';
const STOP_GRACE_MS = 20_000;
const LOCK_TIMEOUT_MS = 15 * 60_000;

/** An error whose message is meant for the user as is (no stack trace). */
export class CliError extends Error {}

let prefix = 'broker';
/** Sets the `[prefix]` of log lines (default `broker`). */
export const setLogPrefix = (p) => {
  prefix = p;
};
/** Progress and diagnostics: stderr, so that stdout carries only the result. */
export const log = (msg) => process.stderr.write(`[${prefix}] ${msg}\n`);
/** A machine-readable result line on stdout. */
export const out = (line) => process.stdout.write(`${line}\n`);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const secs = (ms) => `${(ms / 1000).toFixed(1)}s`;

/** `$IDCTX_CACHE_DIR`, else `$XDG_CACHE_HOME/idctx`, else `~/.cache/idctx`. */
export function cacheDir() {
  if (env.IDCTX_CACHE_DIR) return path.resolve(env.IDCTX_CACHE_DIR);
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'idctx');
}

export function splitArgs(value) {
  return (value || '').split(/\s+/).filter(Boolean);
}

export function shellQuote(value) {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

export function which(cmd) {
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

export function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

export function writeJsonAtomic(file, data) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

export function tailFile(file, lines = 40) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n').trimEnd();
  } catch {
    return null;
  }
}

export function pidAlive(pid) {
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
export function processArgv(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return null;
  }
}

export async function waitForExit(pid, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return true;
    await sleep(100);
  }
  return !pidAlive(pid);
}

/** SIGTERM, then SIGKILL after `graceMs`; throws if the process survives both. */
export async function terminate(pid, what, graceMs = STOP_GRACE_MS) {
  if (!pidAlive(pid)) return;
  log(`stopping ${what} (pid ${pid}) ...`);
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
  if (await waitForExit(pid, graceMs)) return;
  log(`${what} did not exit within ${secs(graceMs)}; sending SIGKILL`);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
  if (!(await waitForExit(pid, 5000))) throw new CliError(`could not kill ${what} (pid ${pid})`);
}

/** Deletes a temp dir created by these scripts; refuses anything else. */
export function removeOwnedDir(dir, dirPrefix) {
  if (!dir || !path.isAbsolute(dir) || !path.basename(dir).startsWith(dirPrefix)) {
    if (dir) log(`not deleting ${dir}: not a directory created by this script`);
    return;
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Runs `fn` holding `<cache>/<name>.lock` (parallel test runners may all call `start` at once).
 * A lock whose holder died is taken over.
 */
export async function withLock(name, fn) {
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
    let holder;
    try {
      holder = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    } catch {
      continue; // released between our two calls
    }
    if (!pidAlive(holder)) {
      fs.rmSync(file, { force: true }); // stale lock from a dead process
      continue;
    }
    if (Date.now() > deadline) throw new CliError(`timed out waiting for ${file} (held by pid ${holder})`);
    if (!announced) log(`waiting for another ${prefix} script (pid ${holder}) to finish ...`);
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

/**
 * Runs a CLI entry: `commands[argv[0]]`, exit code from its result, a CliError printed as a
 * message and anything else with its stack. SIGINT/SIGTERM exit through the 'exit' handlers.
 */
export function runCli(commands, usage, argv = process.argv.slice(2)) {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => process.exit(130)); // runs 'exit' handlers (lock release)
  }
  const main = async () => {
    const name = argv[0];
    if (!name || name === '-h' || name === '--help' || name === 'help') {
      process.stderr.write(`${usage()}\n`);
      return name ? 0 : 2;
    }
    const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
    if (!command) {
      process.stderr.write(`unknown command: ${name}\n\n${usage()}\n`);
      return 2;
    }
    return (await command(...argv.slice(1))) ?? 0;
  };
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      log(err instanceof CliError ? `error: ${err.message}` : `unexpected error: ${err.stack || err}`);
      process.exitCode = 1;
    },
  );
}
