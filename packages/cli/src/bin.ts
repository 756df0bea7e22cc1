#!/usr/bin/env node
import { runCli } from './program.js'

// A reader that goes away (`idctx tail … | head`) makes the next write fail with EPIPE: that is
// the end of the output, as for any command-line tool, not a crash with a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e
  process.exit(process.exitCode ?? 0)
})

const code = await runCli(process.argv.slice(2))
process.exitCode = code
