#!/usr/bin/env node
// The docker example cluster (docker/compose.yaml) on this machine, end to end.
//
//   node scripts/docker.mjs test         # `npm run test:docker`: engine, images, test, clean up
//   node scripts/docker.mjs engine       # an engine that answers; prints `export DOCKER_HOST=…`
//   node scripts/docker.mjs images       # base images (pull, or make here) and the cluster's images
//   node scripts/docker.mjs down         # remove the test's containers (project idctx-docker-test)
//   node scripts/docker.mjs stop-engine  # stop the dockerd these scripts started
//
// Engine (scripts/lib/docker-engine.mjs): one that answers (DOCKER_HOST, the default socket), or
// a rootful dockerd of its own under <cache>/docker — installing docker.io and docker-compose
// with apt-get when missing. Base images (scripts/lib/docker-images.mjs): debian:trixie-slim
// and node:24-trixie-slim are pulled where a registry answers, else made here (debootstrap,
// docker/node/Dockerfile). `test` stops the dockerd it started, also on failure; the engine's
// data root (the image cache) stays. Progress on stderr; docs/docker.md.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError, env, log, out, runCli, secs, setLogPrefix, shellQuote, which } from './lib/common.mjs';
import { capture, ensureEngine, relay, stopEngine } from './lib/docker-engine.mjs';
import { ensureBaseImages, pruneOurDangling } from './lib/docker-images.mjs';

setLogPrefix('docker');
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const COMPOSE_FILE = path.join(ROOT, 'docker/compose.yaml');
const PROJECT = env.IDCTX_COMPOSE_PROJECT || 'idctx-docker-test';
// The images `up` needs; every example service shares the one of identity-provider.
const BUILD_SERVICES = ['kafka', 'redis', 'identity-provider'];

/** `docker-compose` (1.29, Debian) or `docker compose` (v2), as an argv prefix. */
export function composeCommand(dockerEnv = {}) {
  if (which('docker-compose')) return ['docker-compose'];
  if (capture('docker', ['compose', 'version'], { envOverride: dockerEnv }).status === 0) return ['docker', 'compose'];
  throw new CliError('neither docker-compose nor `docker compose` is available');
}

/**
 * PEM certificates the builds must trust besides Debian's and Node's own: those of a
 * TLS-intercepting proxy. IDCTX_EXTRA_CA_CERTS (PEM text) or IDCTX_EXTRA_CA_FILE, else the
 * certificates this machine added to its trust store (/usr/local/share/ca-certificates, the
 * Debian place for local CAs). Empty when there are none.
 */
function extraCaCerts() {
  if (env.IDCTX_EXTRA_CA_CERTS !== undefined) return env.IDCTX_EXTRA_CA_CERTS;
  const files = [];
  if (env.IDCTX_EXTRA_CA_FILE) files.push(env.IDCTX_EXTRA_CA_FILE);
  else {
    const walk = (dir) => {
      let entries = [];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.crt')) files.push(p);
      }
    };
    walk('/usr/local/share/ca-certificates');
  }
  const pems = [];
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8');
    pems.push(...(text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []));
  }
  if (pems.length > 0) log(`builds trust ${pems.length} extra CA certificate(s) from ${files.join(', ')}`);
  return pems.join('\n');
}

function dockerEnvOf(engine) {
  // The classic builder for every build: the Dockerfiles need nothing else, and it behaves the
  // same under docker-compose 1.29 (docker-py) and the docker CLI without buildx.
  return {
    ...(engine.host ? { DOCKER_HOST: engine.host } : {}),
    DOCKER_BUILDKIT: '0',
    COMPOSE_DOCKER_CLI_BUILD: '0',
    IDCTX_EXTRA_CA_CERTS: extraCaCerts(),
  };
}

async function compose(dockerEnv, args) {
  const [cmd, ...pre] = composeCommand(dockerEnv);
  return relay(cmd, [...pre, '-f', COMPOSE_FILE, '-p', PROJECT, ...args], { envOverride: dockerEnv, cwd: ROOT });
}

async function buildImages(dockerEnv, timings) {
  let t = Date.now();
  await ensureBaseImages(dockerEnv);
  timings.baseImages = Date.now() - t;
  t = Date.now();
  log(`building ${BUILD_SERVICES.join(', ')} (docker/compose.yaml) ...`);
  const code = await compose(dockerEnv, ['build', '--force-rm', ...BUILD_SERVICES]);
  if (code !== 0) throw new CliError(`docker-compose build failed (exit ${code})`);
  timings.build = Date.now() - t;
  log(`images built in ${secs(timings.build)}`);
  pruneOurDangling(dockerEnv);
}

/** pnpm and the workspace's node_modules on the host (the test runs there), like scripts/run.sh. */
async function ensureWorkspace() {
  const r = capture('bash', [path.join(ROOT, 'scripts/ensure-pnpm.sh')], { timeoutMs: 10 * 60_000 });
  if (r.status !== 0) throw new CliError(`scripts/ensure-pnpm.sh failed:\n${r.stderr}`);
  const pnpm = r.stdout.trim();
  const marker = path.join(ROOT, 'node_modules/.modules.yaml');
  const stale = (f) => !fs.existsSync(marker) || fs.statSync(path.join(ROOT, f)).mtimeMs > fs.statSync(marker).mtimeMs;
  if (stale('pnpm-lock.yaml') || stale('package.json')) {
    log('installing workspace dependencies');
    const code = await relay(pnpm, ['install', '--frozen-lockfile', '--reporter=append-only'], { cwd: ROOT });
    if (code !== 0) throw new CliError(`pnpm install failed (exit ${code})`);
  }
  return pnpm;
}

function summary(timings) {
  const parts = Object.entries(timings).map(([k, v]) => `${k} ${secs(v)}`);
  return parts.join(', ');
}

const commands = {
  async engine() {
    const engine = await ensureEngine();
    if (engine.host) out(`export DOCKER_HOST=${shellQuote(engine.host)}`);
  },

  async 'stop-engine'() {
    await stopEngine();
  },

  async images() {
    const engine = await ensureEngine();
    await buildImages(dockerEnvOf(engine), {});
  },

  async down() {
    const engine = await ensureEngine();
    await compose(dockerEnvOf(engine), ['--profile', 'attack', 'down', '--volumes', '--remove-orphans', '--timeout', '10']);
  },

  async test(...args) {
    const t0 = Date.now();
    const timings = {};
    const pnpm = await ensureWorkspace();
    let t = Date.now();
    const engine = await ensureEngine();
    timings.engine = Date.now() - t;
    const dockerEnv = dockerEnvOf(engine);
    let status = 1;
    try {
      await buildImages(dockerEnv, timings);
      t = Date.now();
      const [cmd, ...pre] = composeCommand(dockerEnv);
      status = await relay(pnpm, ['exec', 'vitest', 'run', '--config', 'test/docker/vitest.config.ts', ...args], {
        cwd: ROOT,
        envOverride: {
          ...dockerEnv,
          IDCTX_COMPOSE: JSON.stringify([cmd, ...pre, '-f', COMPOSE_FILE, '-p', PROJECT]),
        },
      });
      timings.test = Date.now() - t;
    } finally {
      t = Date.now();
      // The test tears the cluster down itself; this catches a run that died before it could.
      await compose(dockerEnv, ['--profile', 'attack', 'down', '--volumes', '--remove-orphans', '--timeout', '10']).catch(() => 1);
      if (engine.started && env.IDCTX_DOCKER_KEEP_ENGINE !== '1') await stopEngine();
      timings.cleanup = Date.now() - t;
      timings.total = Date.now() - t0;
      log(`times: ${summary(timings)}`);
    }
    return status;
  },
};

function usage() {
  return [
    'usage: node scripts/docker.mjs <command>',
    '',
    '  test         engine, base images, cluster images, the docker test (test/docker), clean up',
    '               (extra arguments go to vitest); stops a dockerd it started',
    '  engine       make sure a Docker engine answers (install and start one if needed);',
    '               prints `export DOCKER_HOST=...` when it is not the default',
    '  images       base images (pull, or debootstrap / docker/node) and the cluster images',
    '  down         remove the test project containers and volumes',
    '  stop-engine  stop the dockerd these scripts started',
    '',
    'Environment: IDCTX_DOCKER_DIR (engine dir, default <cache>/docker), IDCTX_DOCKER_PULL=0',
    '(never pull), IDCTX_DEBIAN_MIRROR, IDCTX_DOCKER_KEEP_ENGINE=1 (test leaves dockerd running).',
    'See docs/docker.md.',
  ].join('\n');
}

runCli(commands, usage);
