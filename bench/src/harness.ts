/** A measured case: ops per second, median of several interleaved rounds. */
export interface Measurement {
  readonly name: string
  readonly opsPerSec: number
  readonly rounds: readonly number[]
}

export type Op = () => unknown | Promise<unknown>

/**
 * Runs each case for `roundMs` per round, interleaving the cases round by round so that noise
 * (another process, GC, CPU frequency) hits all of them alike; reports the median round.
 */
export async function measure(cases: Record<string, Op>, options: { rounds?: number; roundMs?: number; batch?: number } = {}): Promise<Record<string, Measurement>> {
  const rounds = options.rounds ?? 5
  const roundMs = options.roundMs ?? 400
  const batch = options.batch ?? 1
  const names = Object.keys(cases)
  const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]))
  for (const name of names) {
    const op = cases[name] as Op
    for (let i = 0; i < 50; i++) await op() // warm-up: JIT and key caches
  }
  for (let r = 0; r < rounds; r++) {
    for (const name of names) {
      const op = cases[name] as Op
      let n = 0
      const start = performance.now()
      let now = start
      while (now - start < roundMs) {
        const res = op()
        if (res instanceof Promise) await res
        n++
        if ((n & 15) === 0) now = performance.now()
      }
      now = performance.now()
      samples[name]?.push((n * batch * 1000) / (now - start))
    }
  }
  const out: Record<string, Measurement> = {}
  for (const name of names) {
    const s = [...(samples[name] as number[])].sort((a, b) => a - b)
    out[name] = { name, opsPerSec: s[Math.floor(s.length / 2)] as number, rounds: s }
  }
  return out
}

export function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)
}

export function pct(a: number, b: number): string {
  return `${((a / b) * 100).toFixed(0)}%`
}

/** A Markdown table. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n')
}

/**
 * Ratios of a run by stable key (e.g. `kafka.consume.100.one-user.vs-headers`), idctx's rate over
 * its baseline's in the same run; written to JSON and drawn in the chart (report.ts).
 */
export type Ratios = Record<string, number>
