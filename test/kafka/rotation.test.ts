import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createKeySet, createRemoteJwks, generateKey, type IdentityContext } from '@idctx/core'
import { wrapConsumer, wrapProducer } from '@idctx/kafkajs'
import { afterAll, describe, expect, it } from 'vitest'
import { KafkaHarness, RecordingObserver, service, uniqueName, verifierFor, waitFor } from './helpers.js'

const h = new KafkaHarness('rotate')
let server: Server | undefined
afterAll(async () => {
  await h.close()
  await new Promise((r) => (server === undefined ? r(undefined) : server.close(r)))
})

const acme: IdentityContext = { sub: 'u-3', tid: 'acme', txn: 'txn-rotation' }

describe('key rotation while producing', () => {
  it('records signed before and after KeySet.rotate all verify: zero false rejects', async () => {
    const { topic } = await h.createTopicWithDlq('rotate')
    const k1 = generateKey('EdDSA', { kid: uniqueName('orders-k1') })
    const k2 = generateKey('EdDSA', { kid: uniqueName('orders-k2') })
    const keys = createKeySet({ active: k1 })
    const orders = service('svc-orders', { key: keys })

    // The producer's JWKS endpoint, as verifiers by URL see it.
    server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(keys.jwks()))
    })
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`

    const dlqProducer = await h.producer()
    const runConsumer = async (name: string, verifierIssuers: Parameters<typeof verifierFor>[1]) => {
      const observer = new RecordingObserver()
      const handled: string[] = []
      const consumer = wrapConsumer(h.consumer({ groupId: uniqueName(name) }), {
        verifier: verifierFor([orders], { ...verifierIssuers, observer }),
        tenant: 'acme',
        observer,
        deadLetter: { producer: dlqProducer },
      })
      await consumer.connect()
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      await consumer.run({ eachMessage: async ({ message }) => void handled.push(message.key?.toString() ?? '') })
      return { observer, handled }
    }

    // Consuming while the producer sends and rotates: one verifier holds the live key set, one
    // fetches the JWKS by URL (learning the new kid on its first token; cooldown 0 for the test).
    const live = await runConsumer('rotate-live', {})
    const remote = await runConsumer('rotate-remote', { issuers: { 'svc-orders': createRemoteJwks(url, { cooldownMs: 0 }) } })

    const producer = wrapProducer(await h.producer(), { signer: orders.signer })
    for (let i = 0; i < 20; i++) {
      if (i === 10) keys.rotate(k2)
      await producer.send({ topic, messages: [{ key: `r-${i}`, value: `v-${i}` }] }, { context: acme })
      if (i === 4) await waitFor('consumers underway', () => live.handled.length > 0 && remote.handled.length > 0)
    }
    expect(keys.prune(900)).toEqual([])

    // A verifier configured after the rotation from the published JWKS (active + retiring keys).
    const snapshot = await runConsumer('rotate-jwks', { issuers: { 'svc-orders': keys.jwks() } })

    for (const c of [live, remote, snapshot]) {
      await waitFor('20 records', () => c.handled.length + c.observer.dispositions.length >= 20)
      expect(c.observer.rejected).toEqual([])
      expect(c.observer.dispositions).toEqual([])
      expect(c.handled).toEqual(Array.from({ length: 20 }, (_, i) => `r-${i}`))
      expect(c.observer.kids).toEqual(new Set([k1.kid, k2.kid]))
    }
  })
})
