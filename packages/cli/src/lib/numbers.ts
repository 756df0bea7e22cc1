import { InvalidArgumentError } from 'commander'

/** Commander parser for a whole number of seconds ≥ 0. */
export function seconds(value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('a whole number of seconds')
  return n
}

/** Commander parser for a count ≥ 1. */
export function count(value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('a whole number ≥ 1')
  return n
}
