import { kafkaBrokers } from '@idctx/example-shared'
import { formatSummary, runDemo } from './flow.js'
import { createProgress } from './progress.js'

// `npm run demo` (scripts/run.sh) starts Kafka and Redis and exports KAFKA_BROKERS and REDIS_URL.
const env = process.env
const progress = createProgress()
try {
  const report = await runDemo({
    kafkaBrokers: kafkaBrokers(env.KAFKA_BROKERS),
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT,
    onProgress: (text) => progress.update(text),
  })
  progress.done()
  console.log(formatSummary(report))
  process.exit(report.unexpected.length === 0 ? 0 : 1)
} catch (e) {
  progress.done()
  console.error('the demo could not run:', e)
  process.exit(1)
}
