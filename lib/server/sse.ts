// Server-sent events as the official OpenAI clients parse them: "event: <type>" plus one JSON "data:" line per event,
// keep-alives as ": comment" lines, a failure as an "error" event with a nested error object, then the end of the
// body. The response starts lazily, at the first event or keep-alive, so errors found before that (bad fields,
// a full queue) are still plain JSON answers with their status.
import type { Response } from 'express';
import type { ApiError } from './errors';

export const DEFAULT_KEEP_ALIVE_MS = 15000;

export class EventStream {
  private timer?: NodeJS.Timeout;
  private begun = false;

  constructor(
    private readonly res: Response,
    private readonly keepAliveMs = DEFAULT_KEEP_ALIVE_MS,
  ) {}

  get started(): boolean {
    return this.begun;
  }

  private get open(): boolean {
    return !this.res.writableEnded && !this.res.destroyed;
  }

  /** Starts the keep-alive clock (the first tick also starts the response). */
  arm(): void {
    if (this.timer || this.keepAliveMs <= 0) return;
    this.timer = setInterval(() => this.write(': keep-alive\n\n'), this.keepAliveMs);
    this.timer.unref();
  }

  private start(): void {
    if (this.begun) return;
    this.begun = true;
    this.res.status(200);
    this.res.setHeader('content-type', 'text/event-stream; charset=utf-8');
    this.res.setHeader('cache-control', 'no-cache, no-transform');
    this.res.setHeader('x-accel-buffering', 'no');
    this.res.flushHeaders();
    this.res.socket?.setNoDelay(true);
  }

  private write(text: string): void {
    if (!this.open) return;
    this.start();
    this.res.write(text);
  }

  /** One event; its JSON `type` names it. With an id, a reconnecting client sends it back as Last-Event-ID. */
  send(event: { type: string; [key: string]: unknown }, id?: number): void {
    this.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
  }

  /** Starts the response now (a stream that may have nothing to send for a while). */
  begin(): void {
    if (this.open) this.start();
  }

  /** A mid-stream failure, then the end. */
  fail(error: ApiError): void {
    this.send({ type: 'error', error: error.body().error });
    this.end();
  }

  /** Stops the keep-alives without starting the response (for an error answered as plain JSON). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  end(): void {
    this.stop();
    if (!this.open) return;
    this.start();
    this.res.end();
  }
}
