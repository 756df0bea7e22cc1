/**
 * Closes a service on SIGINT/SIGTERM (Ctrl-C, `docker stop`), once; a second signal exits at once.
 *
 * @example
 * ```ts
 * onShutdown(() => orders.close())
 * ```
 */
export function onShutdown(close: () => Promise<void>): void {
  let closing = false
  const handler = (signal: NodeJS.Signals) => {
    if (closing) process.exit(1)
    closing = true
    process.stderr.write(`${signal}: closing\n`)
    close().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`close failed: ${e instanceof Error ? e.name : 'error'}\n`)
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
}
