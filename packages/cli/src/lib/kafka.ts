import { Kafka, logLevel } from 'kafkajs'
import { CliError, ExitCode } from './exit-codes.js'

/** `--brokers` or `KAFKA_BROKERS`, as a list. */
export function brokersOf(option: string | undefined, env: Readonly<Record<string, string | undefined>>): string[] {
  const list = (option ?? env.KAFKA_BROKERS ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0)
  if (list.length === 0) throw new CliError(ExitCode.Usage, 'no brokers: pass --brokers host:port[,host:port] or set KAFKA_BROKERS')
  return list
}

/** A kafkajs client that gives up quickly on an unreachable broker (a command, not a service). */
export function kafkaClient(brokers: string[], clientId: string): Kafka {
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 1000 },
  })
}

/** Runs a Kafka step; a broker that cannot be reached becomes exit code 3. */
export async function reach<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step()
  } catch (e) {
    if (e instanceof CliError) throw e
    const name = (e as Error).name ?? 'Error'
    throw new CliError(ExitCode.Unreachable, `${what}: ${name}: ${(e as Error).message}`)
  }
}
