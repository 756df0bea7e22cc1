import { describe, expect, it } from 'vitest'
import { idctx } from './run-cli.js'

// `idctx … | head -3`: once the reader has what it wants it closes the pipe, and the command's
// next write fails with EPIPE. That is the end of the output, not a crash with a stack trace.
describe('idctx with a closed standard output', () => {
  it('--help into a pipe nobody reads exits 0 without an error', async () => {
    const run = await idctx(['--help'], { closedStdout: true })
    expect(run.stderr).not.toMatch(/EPIPE|Error|at /)
    expect(run.code).toBe(0)
  })

  it('a command that fails keeps its own exit code', async () => {
    const run = await idctx(['jwks', '/nonexistent/keyset.json'], { closedStdout: true })
    expect(run.stderr).not.toMatch(/EPIPE/)
    expect(run.code).not.toBe(0)
  })
})
