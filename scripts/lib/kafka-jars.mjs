// The Apache Kafka broker as jars from Maven Central (scripts/kafka/pom.xml), fetched once into
// <cache>/kafka-<version>/libs, and the Java that runs them. Used by scripts/broker.mjs and, at
// image build time, by docker/kafka/Dockerfile (docker/kafka/configure.mjs).

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, CliError, env, log, secs, splitArgs, which, writeJsonAtomic } from './common.mjs';

export const KAFKA_ASSETS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'kafka');
export const POM_FILE = path.join(KAFKA_ASSETS_DIR, 'pom.xml');
export const LOG4J_FILE = path.join(KAFKA_ASSETS_DIR, 'log4j.properties');

// Newest 3.9.x on Maven Central. 3.9 is the last line that accepts every old protocol
// version (Kafka 4.0 removed many, KIP-896; kafkajs 2.2.4 is unmaintained) and it uses
// the log4j 1.x config in scripts/kafka/. See docs/broker.md before moving to 4.x.
export const DEFAULT_KAFKA_VERSION = '3.9.2';
export const kafkaVersion = () => env.IDCTX_KAFKA_VERSION || DEFAULT_KAFKA_VERSION;

export function kafkaHome(version) {
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
export async function ensureKafkaLibs(version) {
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

export function javaBinary() {
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
