import { describe, expect, it } from 'vitest'
import { passThrough } from '@idctx/core'

class Client {
  #sent: string[] = []
  name = 'client'
  send(v: string): this {
    this.#sent.push(v)
    return this
  }
  sent(): readonly string[] {
    return this.#sent
  }
}

describe('passThrough: how adapters wrap a client object', () => {
  it('overrides win; every other member is the target own, methods bound to it (private fields work)', () => {
    const client = new Client()
    const calls: string[] = []
    const view = passThrough(client, { send: (v: string) => (calls.push(v), 'signed') })
    expect(view.send('a')).toBe('signed')
    expect(calls).toEqual(['a'])
    expect(view.name).toBe('client')
    // sent() reads a private field: it only works called on the real instance.
    client.send('b')
    expect(view.sent()).toEqual(['b'])
    // The target is untouched, and `in` sees both the overrides and the target's members.
    expect(Object.prototype.hasOwnProperty.call(client, 'send')).toBe(false)
    expect('send' in view && 'sent' in view && 'name' in view).toBe(true)
  })

  it('one bound function per member function; a member the target replaces later is bound afresh', () => {
    const client = new Client()
    const view = passThrough(client, {})
    expect(view.sent).toBe(view.sent)
    const before = view.sent
    client.sent = function (this: Client) {
      return ['replaced', this === client ? 'bound' : 'unbound']
    }
    expect(view.sent).not.toBe(before)
    expect(view.sent()).toEqual(['replaced', 'bound'])
  })
})
