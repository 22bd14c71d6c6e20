/**
 * The transaction check sweep: finds half messages left unresolved past their producer group's
 * check delay and asks the group what became of them, as RocketMQ's broker does with
 * `checkTransactionState`. It runs every minute as a scheduled Lambda function, and in
 * `skyrocket dev` on an in-process timer; each run is one `run()`.
 *
 * Per due item of the transactions table (namesrv/transactions.ts):
 *
 * 1. Claim it: a conditional update counts the check and moves `nextCheckAt` one check interval
 *    ahead, so overlapping runs never check one transaction twice at once. An item whose broker
 *    group has no live leader is left for a later run, unclaimed: a broker that is down does not
 *    use up its transactions' checks.
 * 2. Past `maxChecks` checks: roll it back, recorded on the broker as `resolvedBy: CHECK_LIMIT`.
 * 3. A group with a `checkUrl` (POST) or a `checkLambdaArn` (Invoke) is asked directly, with the
 *    check request below; its answer COMMIT or ROLLBACK is applied (`resolvedBy: CHECK`), and
 *    UNKNOWN (or no answer, or anything else) leaves it for the next check.
 * 4. Any other group is asked through its SDK producers: the owning broker queues the check
 *    request, and the producers' long polls (`POST /v1/producer-groups/{group}/checks`) take it;
 *    a producer answers with commit or rollback.
 *
 *   check request := {"transactionId", "messageId", "producerGroup", "topic", "checks", "message"}
 *   check answer  := {"status": "COMMIT" | "ROLLBACK" | "UNKNOWN"}   (or the bare string)
 *
 * Brokers are called as members of the cluster (the internal secret), at the leader of the
 * broker group named in the item. An item whose transaction the broker no longer holds as
 * PREPARED (resolved, or gone past retention) is deleted.
 */
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { isErrorCode } from '../../core/errors.ts';
import { defaultProducerGroup, type ProducerGroup, type TransactionItem, type TransactionTables } from '../../namesrv/transactions.ts';
import type { Broker } from '../../namesrv/registry.ts';

export type CheckAnswer = 'COMMIT' | 'ROLLBACK' | 'UNKNOWN';

export interface TxnCheckLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface TransactionCheckerOptions {
  tables: Pick<TransactionTables, 'listTransactions' | 'claimCheck' | 'deleteTransaction' | 'listProducerGroups'>;
  /** Where the brokers are: the name server. */
  brokers: { listBrokers(): Promise<Broker[]> };
  /** The cluster's internal secret, which brokers accept from each other. */
  internalSecret: string;
  /** Invokes a checker Lambda function with a JSON payload and returns its JSON answer. @default none (such groups stay UNKNOWN) */
  invokeLambda?: ((functionArn: string, payload: string) => Promise<string>) | undefined;
  /** @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  /** @default Date.now */
  now?: () => number;
  /** Transactions checked at once. @default 16 */
  concurrency?: number;
  /** How long a checker or a broker may take to answer. @default 5000 */
  requestTimeoutMs?: number;
  /** @default silent */
  log?: TxnCheckLogger;
}

export interface TxnCheckSummary {
  /** Items due when the run started. */
  due: number;
  /** Items this run checked (claimed). */
  checked: number;
  committed: number;
  rolledBack: number;
  /** Rolled back because they reached the group's `maxChecks`. */
  checkLimit: number;
  /** Checkers that answered UNKNOWN, did not answer, or answered nonsense. */
  unknown: number;
  /** Check requests queued on brokers for SDK producers. */
  requested: number;
  /** Items deleted because their transaction was no longer unresolved. */
  cleaned: number;
  /** Items left for a later run: no live leader, or a broker call failed. */
  deferred: number;
}

const silent: TxnCheckLogger = { info() {}, warn() {} };
const internalHeader = 'x-skyrocket-internal';
const principalHeader = 'x-skyrocket-principal';

export class TransactionChecker {
  readonly #o: Required<Omit<TransactionCheckerOptions, 'invokeLambda'>> & Pick<TransactionCheckerOptions, 'invokeLambda'>;
  #running: Promise<TxnCheckSummary> | undefined;

  constructor(options: TransactionCheckerOptions) {
    this.#o = {
      fetch: globalThis.fetch,
      now: Date.now,
      concurrency: 16,
      requestTimeoutMs: 5_000,
      log: silent,
      ...options,
    };
  }

  /** One sweep. A sweep still running is joined, not repeated. */
  run(): Promise<TxnCheckSummary> {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #run(): Promise<TxnCheckSummary> {
    const now = this.#o.now();
    const [due, registered, brokers] = await Promise.all([
      this.#o.tables.listTransactions({ dueBy: now }),
      this.#o.tables.listProducerGroups(),
      this.#o.brokers.listBrokers(),
    ]);
    const groups = new Map(registered.map((g) => [g.name, g]));
    const leaders = leaderAddresses(brokers, now);
    const summary: TxnCheckSummary = { due: due.length, checked: 0, committed: 0, rolledBack: 0, checkLimit: 0, unknown: 0, requested: 0, cleaned: 0, deferred: 0 };
    due.sort((a, b) => a.nextCheckAt - b.nextCheckAt);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < due.length) {
        const item = due[next++] as TransactionItem;
        const group = groups.get(item.producerGroup) ?? defaultProducerGroup(item.producerGroup);
        try {
          await this.#check(item, group, leaders.get(item.brokerGroup), summary);
        } catch (error) {
          summary.deferred++;
          this.#o.log.warn({ err: error, transactionId: item.txId, brokerGroup: item.brokerGroup }, 'transaction check failed; retrying later');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#o.concurrency, due.length) }, worker));
    if (summary.due > 0) this.#o.log.info({ ...summary }, 'transaction check sweep');
    return summary;
  }

  async #check(item: TransactionItem, group: ProducerGroup, leader: string | undefined, summary: TxnCheckSummary): Promise<void> {
    if (leader === undefined) {
      summary.deferred++;
      return;
    }
    const claimed = await this.#o.tables.claimCheck(item, this.#o.now() + group.checkIntervalMs);
    if (claimed === undefined) return; // another sweep has it
    summary.checked++;
    const id = encodeURIComponent(item.txId);
    if (claimed.checks > group.maxChecks) {
      const reply = await this.#broker(leader, 'POST', `/v1/transactions/${id}/rollback`, { resolvedBy: 'CHECK_LIMIT', checks: claimed.checks - 1 });
      if ((await this.#settle(item, reply, summary, true)) === 'gone') return;
      summary.checkLimit++;
      this.#o.log.warn(
        { transactionId: item.txId, topic: item.topic, producerGroup: item.producerGroup, checks: claimed.checks - 1 },
        'transaction rolled back: its producer group never resolved it',
      );
      return;
    }
    if (group.checkUrl === undefined && (group.checkLambdaArn === undefined || this.#o.invokeLambda === undefined)) {
      const reply = await this.#broker(leader, 'POST', `/v1/transactions/${id}/check`, { checks: claimed.checks });
      if ((await this.#settle(item, reply, summary)) !== 'prepared') return;
      summary.requested++;
      return;
    }
    const status = await this.#broker(leader, 'GET', `/v1/transactions/${id}`);
    if ((await this.#settle(item, status, summary)) !== 'prepared') return;
    const request = {
      transactionId: item.txId,
      messageId: item.messageId,
      producerGroup: item.producerGroup,
      topic: item.topic,
      checks: claimed.checks,
      message: status.json['message'],
    };
    const answer = await this.#ask(group, request);
    if (answer === 'UNKNOWN') {
      summary.unknown++;
      return;
    }
    const verb = answer === 'COMMIT' ? 'commit' : 'rollback';
    const reply = await this.#broker(leader, 'POST', `/v1/transactions/${id}/${verb}`, { resolvedBy: 'CHECK', checks: claimed.checks });
    if ((await this.#settle(item, reply, summary, true)) === 'gone') return;
    if (answer === 'COMMIT') summary.committed++;
    else summary.rolledBack++;
  }

  /**
   * What the broker's reply says of the transaction: still `prepared`, `resolved` (by the call
   * that got this reply, or before it), or `gone` (unknown to the broker, or resolved the other
   * way). The item is deleted unless the transaction is still prepared: the broker deletes it
   * itself after a resolution it makes, but not after answering one made before. A reply that
   * says nothing (the broker did not answer) throws, and a later run retries.
   */
  async #settle(
    item: TransactionItem,
    reply: { status: number; json: Record<string, unknown> },
    summary: TxnCheckSummary,
    resolving = false,
  ): Promise<'prepared' | 'resolved' | 'gone'> {
    const code = (reply.json['error'] as { code?: unknown } | undefined)?.code;
    const gone = code === 'INVALID_TRANSACTION_ID' || code === 'TRANSACTION_ALREADY_RESOLVED';
    if (reply.status !== 200 && !gone) {
      throw new Error(`broker answered ${reply.status} ${isErrorCode(code) ? code : ''}`.trim());
    }
    if (!gone && reply.json['state'] === 'PREPARED') return 'prepared';
    await this.#o.tables.deleteTransaction(item.txId);
    if (gone || !resolving) summary.cleaned++;
    return gone ? 'gone' : 'resolved';
  }

  /** Asks a producer group's checker; anything but a clear COMMIT or ROLLBACK is UNKNOWN. */
  async #ask(group: ProducerGroup, request: Record<string, unknown>): Promise<CheckAnswer> {
    const payload = JSON.stringify(request);
    try {
      let text: string;
      if (group.checkUrl !== undefined) {
        const response = await this.#o.fetch(group.checkUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: payload,
          signal: AbortSignal.timeout(this.#o.requestTimeoutMs),
        });
        text = await response.text();
        if (!response.ok) return 'UNKNOWN';
      } else {
        text = await (this.#o.invokeLambda as NonNullable<TransactionCheckerOptions['invokeLambda']>)(group.checkLambdaArn as string, payload);
      }
      return parseCheckAnswer(text);
    } catch (error) {
      this.#o.log.warn({ err: error, producerGroup: group.name, transactionId: request['transactionId'] }, 'transaction checker did not answer');
      return 'UNKNOWN';
    }
  }

  async #broker(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const init: RequestInit = {
      method,
      headers: { [internalHeader]: this.#o.internalSecret, [principalHeader]: 'txn-check', 'content-type': 'application/json' },
      signal: AbortSignal.timeout(this.#o.requestTimeoutMs),
    };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await this.#o.fetch(`${base}${path}`, init);
    const text = await response.text();
    let json: Record<string, unknown> = {};
    try {
      const value = JSON.parse(text) as unknown;
      if (typeof value === 'object' && value !== null) json = value as Record<string, unknown>;
    } catch {
      // a proxy's page: no state, no error code
    }
    return { status: response.status, json };
  }
}

/** The live leader of each broker group: the highest epoch, as routes resolve it. */
export function leaderAddresses(brokers: readonly Broker[], nowMs: number): Map<string, string> {
  const best = new Map<string, Broker>();
  for (const b of brokers) {
    if (b.role !== 'LEADER' || b.expiresAt <= nowMs) continue;
    const seen = best.get(b.brokerGroup);
    if (seen === undefined || b.epoch > seen.epoch) best.set(b.brokerGroup, b);
  }
  return new Map([...best].map(([group, b]) => [group, b.address]));
}

/**
 * A checker's answer: `{"status": "COMMIT"}` or the bare string, also RocketMQ's names
 * (`COMMIT_MESSAGE`, `ROLLBACK_MESSAGE`, `UNKNOW`). Anything else is UNKNOWN.
 */
export function parseCheckAnswer(text: string): CheckAnswer {
  let value: unknown = text.trim();
  try {
    value = JSON.parse(text);
  } catch {
    // a bare word
  }
  if (typeof value === 'object' && value !== null) value = (value as Record<string, unknown>)['status'];
  if (typeof value !== 'string') return 'UNKNOWN';
  switch (value.trim().toUpperCase()) {
    case 'COMMIT':
    case 'COMMIT_MESSAGE':
      return 'COMMIT';
    case 'ROLLBACK':
    case 'ROLLBACK_MESSAGE':
      return 'ROLLBACK';
    default:
      return 'UNKNOWN';
  }
}

/** Invokes checker functions with the Lambda API (synchronously, `RequestResponse`). */
export function lambdaInvoker(client: LambdaClient): (functionArn: string, payload: string) => Promise<string> {
  return async (functionArn, payload) => {
    const out = await client.send(new InvokeCommand({ FunctionName: functionArn, InvocationType: 'RequestResponse', Payload: Buffer.from(payload) }));
    if (out.FunctionError !== undefined) return 'UNKNOWN';
    return Buffer.from(out.Payload ?? new Uint8Array()).toString('utf8');
  };
}
