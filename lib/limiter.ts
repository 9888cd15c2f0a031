import { OvDiffusionError } from './errors';

export interface LimiterOptions {
  /** Callers that may wait for a slot; one more is refused with ERR_QUEUE_FULL (default: unbounded). */
  maxQueue?: number;
  /** Longest wait for a slot in ms; then ERR_QUEUE_TIMEOUT (default: no limit). */
  queueTimeoutMs?: number;
}

interface Waiter {
  grant: () => void;
  onPosition?: (position: number) => void;
}

/** A FIFO counting semaphore: at most `limit` holders at once, others wait in order, up to a bound. */
export class ConcurrencyLimiter {
  private running = 0;
  private readonly waiting: Waiter[] = [];
  private readonly maxQueue: number;
  private readonly queueTimeoutMs: number;

  constructor(
    readonly limit: number,
    options: LimiterOptions = {},
  ) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new OvDiffusionError('ERR_INVALID_ARGUMENT', 'maxConcurrency must be a positive integer');
    const { maxQueue = Infinity, queueTimeoutMs = Infinity } = options;
    if (!(maxQueue === Infinity || (Number.isInteger(maxQueue) && maxQueue >= 0)))
      throw new OvDiffusionError('ERR_INVALID_ARGUMENT', 'maxQueue must be a non-negative integer');
    if (!(queueTimeoutMs > 0)) throw new OvDiffusionError('ERR_INVALID_ARGUMENT', 'queueTimeoutMs must be positive');
    this.maxQueue = maxQueue;
    this.queueTimeoutMs = queueTimeoutMs;
  }

  get active(): number {
    return this.running;
  }
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Runs task once a slot is free. onPosition, when the call has to wait, hears its 1-based place in the queue
   * (1 = the next to run) at once and each time it moves up.
   */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal, onPosition?: (position: number) => void): Promise<T> {
    await this.acquire(signal, onPosition);
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  private acquire(signal?: AbortSignal, onPosition?: (position: number) => void): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.running < this.limit) {
      this.running += 1;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.maxQueue) {
      return Promise.reject(
        new OvDiffusionError(
          'ERR_QUEUE_FULL',
          `${this.running} generations are running and ${this.waiting.length} waiting; the queue holds ${this.maxQueue}`,
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const leave = () => {
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) {
          this.waiting.splice(index, 1);
          // Those behind move up.
          for (let k = index; k < this.waiting.length; k++) this.waiting[k].onPosition?.(k + 1);
        }
        signal?.removeEventListener('abort', onAbort);
        if (timer) clearTimeout(timer);
      };
      const waiter: Waiter = {
        grant: () => {
          leave();
          this.running += 1;
          resolve();
        },
        onPosition,
      };
      const onAbort = () => {
        leave();
        reject(signal!.reason);
      };
      if (Number.isFinite(this.queueTimeoutMs)) {
        timer = setTimeout(() => {
          leave();
          reject(new OvDiffusionError('ERR_QUEUE_TIMEOUT', `waited ${this.queueTimeoutMs} ms for a free slot`));
        }, this.queueTimeoutMs);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
      onPosition?.(this.waiting.length);
    });
  }

  private release(): void {
    this.running -= 1;
    this.waiting[0]?.grant();
  }
}
