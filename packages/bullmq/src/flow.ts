import { passThrough } from '@idctx/core'
import type { FlowJob, FlowOpts, FlowProducer, JobNode } from 'bullmq'
import { afterSigning, prepareJobs, rejecting, resolveSigningOptions, type PendingJob } from './signing.js'
import type { AddOptions, SigningOptions } from './types.js'

// What the wrapper uses of a BullMQ FlowProducer: BullMQ 6 made FlowProducer generic and 5.x's is
// not, so `FlowProducer<any, any>` would not type-check against 5.x's declarations.
type AnyFlowProducer = Pick<FlowProducer, 'add' | 'addBulk'>

/** One node of a flow tree as BullMQ takes it (root or nested). */
interface FlowNode {
  name: string
  queueName: string
  data?: unknown
  opts?: { delay?: number }
  children?: FlowNode[]
}

/**
 * The members {@link wrapFlowProducer} replaces or adds; everything else is the producer's own.
 *
 * @example
 * ```ts
 * await flows.addBulk([flowA, flowB], { context })
 * ```
 */
export interface SignedFlowProducerMembers<F extends AnyFlowProducer> {
  /**
   * `FlowProducer.add`, with the parent and every child signed: one token, one proof per job.
   * Rejects with ConfigError (unknown `idctx` key) or SigningError (data, context) first.
   */
  add(flow: FlowJob, opts?: FlowOpts, idctx?: AddOptions): Promise<JobNode>
  /** `FlowProducer.addBulk`, with one token over every job of every flow. */
  addBulk(flows: FlowJob[], idctx?: AddOptions): Promise<JobNode[]>
  /** The wrapped flow producer itself. */
  readonly unwrapped: F
}

/**
 * A BullMQ flow producer whose `add` and `addBulk` sign every job of the flow.
 *
 * @example
 * ```ts
 * const flows: SignedFlowProducer<FlowProducer> = wrapFlowProducer(new FlowProducer({ connection }), { signer })
 * ```
 */
export type SignedFlowProducer<F extends AnyFlowProducer> = Omit<F, keyof SignedFlowProducerMembers<F>> &
  SignedFlowProducerMembers<F>

function collect(node: FlowNode, opts: FlowOpts | undefined, out: PendingJob[]): void {
  if (node === null || typeof node !== 'object') throw new TypeError('a flow node must be an object')
  const queueDefault = opts?.queuesOptions?.[node.queueName]?.defaultJobOptions as { delay?: number } | undefined
  out.push({ queueName: node.queueName, name: node.name, data: node.data, delayMs: node.opts?.delay ?? queueDefault?.delay })
  if (node.children !== undefined) for (const child of node.children) collect(child, opts, out)
}

function rebuild(node: FlowNode, signed: readonly Record<string, unknown>[], next: { i: number }): FlowNode {
  const data = signed[next.i++]
  const copy: FlowNode = { ...node, data }
  if (node.children !== undefined) copy.children = node.children.map((c) => rebuild(c, signed, next))
  return copy
}

/**
 * Checks every job of the flows now, then signs them (with the other calls of the turn, or at
 * once) and hands the rebuilt flows to `deliver`.
 */
function signFlows<T>(
  o: ReturnType<typeof resolveSigningOptions>,
  flows: readonly FlowJob[],
  opts: FlowOpts | undefined,
  idctx: AddOptions | undefined,
  deliver: (signed: FlowJob[]) => Promise<T>,
): Promise<T> {
  const pending: PendingJob[] = []
  for (const f of flows) collect(f as FlowNode, opts, pending)
  const prep = prepareJobs(o, pending, idctx)
  return afterSigning(o, prep, (signed) => {
    const next = { i: 0 }
    return deliver(flows.map((f) => rebuild(f as FlowNode, signed, next) as FlowJob))
  })
}

/**
 * Wraps a BullMQ `FlowProducer` so that `add` and `addBulk` sign the parent and every child of a
 * flow — each bound to its own queue, name and data — with a Merkle proof per job under one
 * token: the call's own, or, when other flow calls share its event-loop turn (option
 * `batchProfile`, default true), the turn's batch-profile token with each job's context record.
 * The producer is not modified; every other member passes through.
 *
 * A parent only becomes processable when its children are done: if they may take longer than the
 * token lifetime, give the call a longer `lifetimeSeconds` (see docs/bullmq.md).
 *
 * Throws a ConfigError (`ERR_IDCTX_CONFIG`) for invalid options or an unknown option key; `add`
 * and `addBulk` reject with a ConfigError for an unknown per-call key and a SigningError when a
 * job's data or the context cannot be signed, before anything is added.
 *
 * @example
 * ```ts
 * const flows = wrapFlowProducer(new FlowProducer({ connection }), { signer })
 * await runWithContext(ctx, () =>
 *   flows.add({
 *     name: 'render', queueName: 'reports', data: { reportId: 'r-1' },
 *     children: [{ name: 'fetch', queueName: 'sources', data: { source: 'ledger' } }],
 *   }),
 * )
 * ```
 */
export function wrapFlowProducer<F extends AnyFlowProducer>(flowProducer: F, options: SigningOptions): SignedFlowProducer<F> {
  const o = resolveSigningOptions('wrapFlowProducer options', options)
  const members: SignedFlowProducerMembers<F> = {
    add: (flow, opts, idctx) =>
      rejecting(() =>
        signFlows(o, [flow], opts, idctx, ([signed]) => (opts === undefined ? flowProducer.add(signed as FlowJob) : flowProducer.add(signed as FlowJob, opts))),
      ),
    addBulk: (flows, idctx) => rejecting(() => signFlows(o, flows, undefined, idctx, (signed) => flowProducer.addBulk(signed))),
    unwrapped: flowProducer,
  }
  return passThrough(flowProducer, members)
}
