import { metrics, ValueType, type Counter, type Histogram, type Meter, type MeterProvider } from '@opentelemetry/api'
import { IdctxMetrics } from '../attributes.js'
import { SCOPE_NAME, SCOPE_VERSION } from '../version.js'

/** The metric instruments one observer records into. */
export interface Instruments {
  readonly signatures: Counter
  readonly verifications: Counter
  readonly verifyDuration: Histogram
  readonly verifyCache: Counter
  readonly rejectionsHandled: Counter
}

function createInstruments(meter: Meter): Instruments {
  return {
    signatures: meter.createCounter(IdctxMetrics.Signatures, {
      description: 'Tokens signed',
      unit: '{token}',
      valueType: ValueType.INT,
    }),
    verifications: meter.createCounter(IdctxMetrics.Verifications, {
      description: 'Messages verified, by result and rejection reason',
      unit: '{message}',
      valueType: ValueType.INT,
    }),
    verifyDuration: meter.createHistogram(IdctxMetrics.VerifyDuration, {
      description: 'Time to verify one message',
      unit: 'ms',
      valueType: ValueType.DOUBLE,
      advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250] },
    }),
    verifyCache: meter.createCounter(IdctxMetrics.VerifyCache, {
      description: 'Accepted messages whose signature check was (hit) or was not served from the token cache',
      unit: '{message}',
      valueType: ValueType.INT,
    }),
    rejectionsHandled: meter.createCounter(IdctxMetrics.RejectionsHandled, {
      description: 'Rejected messages dealt with by a rejection policy',
      unit: '{message}',
      valueType: ValueType.INT,
    }),
  }
}

/**
 * Returns the instruments to record into. A given meter is used as is; otherwise the global
 * meter provider is looked up on every call, because unlike tracers the metrics API has no proxy:
 * an observer built before the SDK registers would otherwise record into the no-op meter forever.
 */
export function instrumentSource(meter: Meter | undefined): () => Instruments {
  if (meter !== undefined) {
    const fixed = createInstruments(meter)
    return () => fixed
  }
  let provider: MeterProvider | undefined
  let current: Instruments | undefined
  return () => {
    const p = metrics.getMeterProvider()
    if (p !== provider || current === undefined) {
      provider = p
      current = createInstruments(p.getMeter(SCOPE_NAME, SCOPE_VERSION))
    }
    return current
  }
}
