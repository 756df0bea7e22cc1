#!/usr/bin/env node
// The `idctx` command. A committed entry point, so that installing the workspace links the
// command before anything is built; the program itself is built into dist/.
import '../dist/bin.js'
