import { describe, it, expect } from 'vitest'
import { ReasonCode, generateKey } from '@idctx/core'
import { calculateJwkThumbprint } from 'jose'
import fc from 'fast-check'
describe('smoke', () => { it('works', () => { expect(ReasonCode.Missing).toBe('missing'); expect(typeof calculateJwkThumbprint).toBe('function'); expect(typeof fc.assert).toBe('function'); expect(generateKey().alg).toBe('EdDSA') }) })
