/** A status line on stderr while the demo runs. */
export interface Progress {
  update(text: string): void
  done(): void
}

/**
 * On a terminal the line is rewritten in place; elsewhere (CI logs, pipes) a line is printed when
 * the phase changes (the text before `:`) and at most once a second otherwise.
 */
export function createProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  const tty = stream.isTTY === true
  let last = ''
  let lastPhase = ''
  let lastAt = 0
  return {
    update(text) {
      if (text === last) return
      last = text
      const phase = text.split(':')[0] ?? text
      if (tty) {
        stream.write(`\r\x1b[K[demo] ${text}`)
      } else if (phase !== lastPhase || Date.now() - lastAt >= 1000) {
        stream.write(`[demo] ${text}\n`)
        lastAt = Date.now()
      }
      lastPhase = phase
    },
    done() {
      if (tty && last !== '') stream.write('\r\x1b[K')
      last = ''
    },
  }
}
