// Just enough of the Kafka wire protocol for a readiness probe and a coordinator warm-up of a
// broker on this machine (scripts/broker.mjs). Node built-ins only.

import crypto from 'node:crypto';
import net from 'node:net';
import { HOST, log, secs, sleep } from './common.mjs';

const API_METADATA = 3;
const API_FIND_COORDINATOR = 10;
const API_DESCRIBE_GROUPS = 15;
const API_VERSIONS = 18;
const API_INIT_PRODUCER_ID = 22;
const WARMUP_ID = 'idctx-broker-warmup';

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
export async function warmUpCoordinators(port, timeoutMs = 20_000) {
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
export async function probeKafka(port, host = HOST) {
  const apis = await apiVersions(host, port);
  if (!apis.has(API_METADATA)) throw new Error('ApiVersions response lacks Metadata');
  const md = await metadata(host, port);
  const self = md.brokers.find((b) => b.port === port);
  if (!self) throw new Error(`Metadata lists no broker on port ${port} yet`);
  return { apis, ...md };
}
