/**
 * Instrumentation scope name of the tracer and meter `@idctx/otel` uses by default.
 *
 * @example
 * ```ts
 * spans.filter((s) => s.instrumentationScope.name === SCOPE_NAME)
 * ```
 */
export const SCOPE_NAME = '@idctx/otel'

/**
 * Instrumentation scope version; kept equal to package.json's version (a unit test checks it).
 *
 * @example
 * ```ts
 * trace.getTracer(SCOPE_NAME, SCOPE_VERSION)
 * ```
 */
export const SCOPE_VERSION = '0.1.0'
