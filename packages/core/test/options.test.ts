import { describe, it, expect } from 'vitest'
import { ConfigError, createSigner, createVerifier, IdctxError, type SignerOptions, type VerifierOptions } from '@idctx/core'
import { baseOptions, makeKeyring } from './fixtures.js'

const ring = makeKeyring()
const SECRET = 'sUp3r-s3cr3t-v4lue'

function configError(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError)
    return e as ConfigError
  }
  throw new Error('expected a ConfigError')
}

describe('options: verifier', () => {
  it('lists every bad path, without the values', () => {
    const e = configError(() =>
      createVerifier({
        audience: `${SECRET}${'x'.repeat(300)}`,
        issuers: { orders: SECRET as never },
        algorithms: [SECRET as never],
        clockToleranceSeconds: 120,
        maxTokenBytes: 10,
        cacheSize: -1,
        replay: { nope: SECRET } as never,
      } as VerifierOptions),
    )
    const paths = e.issues.map((i) => i.path).sort()
    expect(paths).toEqual(['algorithms.0', 'audience', 'cacheSize', 'clockToleranceSeconds', 'issuers.orders', 'maxTokenBytes', 'replay'].sort())
    expect(e.message).not.toContain(SECRET)
    expect(JSON.stringify(e.issues)).not.toContain(SECRET)
    for (const i of e.issues) expect(typeof i.message).toBe('string')
    expect(e.code).toBe('ERR_IDCTX_CONFIG')
    expect(ConfigError.code).toBe('ERR_IDCTX_CONFIG')
    expect(e).toBeInstanceOf(IdctxError)
    expect(e.name).toBe('ConfigError')
  })

  it('caps the clock tolerance at 60 s', () => {
    expect(() => createVerifier(baseOptions(ring, { clockToleranceSeconds: 60 }))).not.toThrow()
    expect(configError(() => createVerifier(baseOptions(ring, { clockToleranceSeconds: 61 }))).issues[0]?.path).toBe('clockToleranceSeconds')
  })

  it('refuses missing required options', () => {
    const e = configError(() => createVerifier({} as VerifierOptions))
    expect(e.issues.map((i) => i.path).sort()).toEqual(['audience', 'issuers'])
    expect(configError(() => createVerifier(undefined as never)).issues[0]?.path).toBe('')
    expect(configError(() => createVerifier(undefined as never)).message).toContain('(root)')
  })

  it('HS256 in the allow-list without allowHS256 is a programmer error', () => {
    expect(() => createVerifier(baseOptions(ring, { allowHS256: false }))).toThrow(TypeError)
  })

  it('refuses an empty algorithm list and unknown ones', () => {
    expect(configError(() => createVerifier(baseOptions(ring, { algorithms: [] }))).issues[0]?.path).toBe('algorithms')
    expect(configError(() => createVerifier(baseOptions(ring, { algorithms: ['none' as never] }))).issues[0]?.path).toBe('algorithms.0')
  })
})

describe('options: signer', () => {
  it('lists every bad path, without the values', () => {
    const e = configError(() =>
      createSigner({ issuer: '', audience: 7, key: SECRET, lifetimeSeconds: -5, maxActorDepth: 99, clock: SECRET } as unknown as SignerOptions),
    )
    expect(e.issues.map((i) => i.path).sort()).toEqual(['audience', 'clock', 'issuer', 'key', 'lifetimeSeconds', 'maxActorDepth'])
    expect(e.message).not.toContain(SECRET)
  })

  it('options are read once: changing the object later has no effect', () => {
    const options: SignerOptions = { issuer: 'orders', audience: 'shop', key: ring.EdDSA }
    const signer = createSigner(options)
    options.issuer = 'evil'
    expect(signer.issuer).toBe('orders')
  })
})
