#!/usr/bin/env node
import { runCli } from './program.js'

const code = await runCli(process.argv.slice(2))
process.exitCode = code
// Sockets a client library keeps open must not hold a finished command: stdout is flushed by the
// time this fires, as the event loop had nothing else left but those handles.
setTimeout(() => process.exit(code), 2000).unref()
