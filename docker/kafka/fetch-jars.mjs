// Image build step (docker/kafka/Dockerfile): the Kafka jars with scripts/lib/kafka-jars.mjs,
// the module scripts/broker.mjs uses, then moved to <dest>/libs.
//
//   node docker/kafka/fetch-jars.mjs /opt/kafka 3.9.2
import fs from 'node:fs';
import path from 'node:path';

const [dest, version] = process.argv.slice(2);
if (!dest || !version) throw new Error('usage: node docker/kafka/fetch-jars.mjs <dest> <kafka version>');
process.env.IDCTX_CACHE_DIR = path.join(dest, '.cache');
const { ensureKafkaLibs } = await import('../../scripts/lib/kafka-jars.mjs');
const libs = await ensureKafkaLibs(version);
fs.renameSync(libs, path.join(dest, 'libs'));
fs.rmSync(process.env.IDCTX_CACHE_DIR, { recursive: true, force: true });
console.log(`${fs.readdirSync(path.join(dest, 'libs')).length} jars in ${path.join(dest, 'libs')}`);
