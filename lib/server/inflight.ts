// The requests in progress, each with an AbortSignal that fires when its client disconnects or when a shutdown
// runs out of grace time; and the drain a SIGTERM runs: refuse new requests, let the running ones finish for a
// while, then cancel what is left (the engine stops at its next denoising step).
import type { Request, RequestHandler, Response } from 'express';
import { ApiError } from './errors';

/** Abort reasons: the library cancels on either; the server answers differently. */
export class ClientDisconnected extends Error {
  constructor() {
    super('the client disconnected');
    this.name = 'ClientDisconnected';
  }
}

export class ServerShuttingDown extends Error {
  constructor() {
    super('the server is shutting down');
    this.name = 'ServerShuttingDown';
  }
}

/**
 * A route handler whose end is observable (see whenHandled): it ends once fn has settled and its error, if any,
 * has been answered by the error handler.
 */
export function handled(fn: (req: Request, res: Response) => Promise<void>): RequestHandler {
  return async (req, res, next) => {
    let done!: () => void;
    res.locals.handled = new Promise<void>((resolve) => {
      done = resolve;
    });
    try {
      await fn(req, res);
    } catch (error) {
      next(error);
    } finally {
      done();
    }
  };
}

/** Resolves when the route's handler (if it was marked with handling) has settled. */
export function whenHandled(res: Response): Promise<void> {
  return (res.locals.handled as Promise<void> | undefined) ?? Promise.resolve();
}

/** The request's signal (set by InFlight.middleware). */
export function requestSignal(res: Response): AbortSignal {
  return (res.locals.signal as AbortSignal | undefined) ?? new AbortController().signal;
}

export class InFlight {
  private readonly active = new Map<Response, AbortController>();
  private idle: Array<() => void> = [];
  draining = false;

  get size(): number {
    return this.active.size;
  }

  /** Tracks the request and gives it res.locals.signal; while draining, answers 503 instead. */
  middleware(): RequestHandler {
    return (_req, res, next) => {
      if (this.draining) {
        res.setHeader('connection', 'close');
        return next(new ApiError(503, 'the server is shutting down', null, 'shutting_down').withHeader('x-should-retry', 'true'));
      }
      const controller = new AbortController();
      res.locals.signal = controller.signal;
      this.active.set(res, controller);
      res.on('close', () => {
        if (!res.writableFinished) controller.abort(new ClientDisconnected());
        // A cancelled generation is in progress until the engine stops.
        void whenHandled(res).then(() => {
          this.active.delete(res);
          if (!this.active.size) this.wake();
        });
      });
      next();
    };
  }

  private wake(): void {
    const waiting = this.idle;
    this.idle = [];
    for (const resolve of waiting) resolve();
  }

  /** Resolves when no request is in progress, or after ms (true when idle). */
  private whenIdle(ms: number): Promise<boolean> {
    if (!this.active.size) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.idle.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /**
   * Stops taking requests, waits up to graceMs for those in progress, then cancels the rest and waits up to
   * settleMs for them to answer. Returns how many were cancelled.
   */
  async drain(graceMs: number, settleMs = 10000): Promise<number> {
    this.draining = true;
    if (await this.whenIdle(graceMs)) return 0;
    const cancelled = this.active.size;
    for (const controller of this.active.values()) controller.abort(new ServerShuttingDown());
    await this.whenIdle(settleMs);
    return cancelled;
  }
}
