// Reading request bodies with bounds: one wrapper around every body parser (JSON, multipart) that refuses a declared
// length over the limit before reading a byte, sends "100 Continue" only when the body is really wanted, stops a body
// that stalls (--body_timeout) or takes too long (--request_timeout), and turns whatever the parser fails with into a
// 4xx: a parser only reads the client's bytes, so its failures are the client's (499 when the client left).
import * as http from 'http';
import type { RequestHandler } from 'express';
import { ApiError, toApiError } from './errors';

export interface RequestTimeouts {
  /** Longest wait for a request's headers (Node's headersTimeout; a bare 408 from Node). */
  headersTimeoutMs: number;
  /** Longest time to receive a request's body, once its headers are in; 0 = no limit. */
  requestTimeoutMs: number;
  /** Longest pause between two pieces of a body; 0 = no limit. */
  bodyTimeoutMs: number;
}

export const DEFAULT_TIMEOUTS: RequestTimeouts = { headersTimeoutMs: 60_000, requestTimeoutMs: 300_000, bodyTimeoutMs: 30_000 };

/** How long a parser may take to finish once the whole body is in. */
const PARSE_AFTER_END_MS = 2000;

/** setTimeout fires at once beyond 2^31-1 ms; longer limits are that long (24.8 days). */
const timerMs = (ms: number) => Math.min(ms, 2 ** 31 - 1);

/** Requests that sent "Expect: 100-continue" and have not been told to go on yet (see createHttpServer). */
const awaitingContinue = new WeakSet<http.IncomingMessage>();
/** Requests with an Expect header other than 100-continue (refused with 417 by refuseExpectation). */
const unmetExpectation = new WeakSet<http.IncomingMessage>();
/** Ends the body stage of a request at once (the multipart byte counter uses it). */
const stopBody = new WeakMap<http.IncomingMessage, (error: ApiError) => void>();

/** The declared Content-Length: a number, undefined when none, NaN when it is not a number. */
function declaredLength(req: http.IncomingMessage): number | undefined {
  const text = req.headers['content-length'];
  if (text === undefined) return undefined;
  return /^\d+$/.test(text) ? Number(text) : NaN;
}

function megabytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MB` : `${bytes} bytes`;
}

export const tooLarge = (maxBytes: number, what: string) =>
  new ApiError(413, `the request body ${what} exceeds the limit of ${megabytes(maxBytes)} for this route`, null, 'request_too_large');

/** The connection is gone (a consumed request is destroyed too, so the socket tells). */
function clientLeft(req: http.IncomingMessage): boolean {
  return req.socket?.destroyed === true;
}

/** What a body parser failed with, as the client's error. */
export function bodyError(error: unknown, req: http.IncomingMessage, kind: 'json' | 'multipart'): ApiError {
  const e = error as { type?: string; code?: string; message?: unknown } | undefined;
  if (e?.type === 'request.aborted' || (!(error instanceof ApiError) && clientLeft(req)) || e?.code === 'ECONNRESET')
    return new ApiError(499, 'the client closed the connection before the request body was complete', null, 'client_closed');
  const mapped = toApiError(error);
  if (mapped.status < 500) return mapped;
  // Anything else a parser throws (busboy: no boundary, a boundary that never comes, a truncated form, a malformed
  // part header, a bad charset) is a malformed body.
  const reason = e?.message !== undefined ? String(e.message) : String(error);
  return kind === 'multipart'
    ? new ApiError(400, `the multipart/form-data body is malformed: ${reason}`, null, 'invalid_multipart')
    : new ApiError(400, `the request body cannot be read: ${reason}`, null, 'invalid_body');
}

export interface BodyStageOptions {
  kind: 'json' | 'multipart';
  maxBytes: number;
  timeouts: RequestTimeouts;
}

/** Wraps a body parser (see the file comment). */
export function bodyStage(parser: RequestHandler, { kind, maxBytes, timeouts }: BodyStageOptions): RequestHandler {
  return (req, res, next) => {
    const declared = declaredLength(req);
    if (declared !== undefined && Number.isNaN(declared))
      return next(new ApiError(400, 'Content-Length must be a number of bytes', null, 'invalid_body'));
    if (declared !== undefined && declared > maxBytes) return next(tooLarge(maxBytes, `(Content-Length ${declared})`));
    if (awaitingContinue.delete(req) && !res.headersSent) res.writeContinue();

    let settled = false;
    let deadline: NodeJS.Timeout | undefined;
    const unparsable = () =>
      new ApiError(
        400,
        `the ${kind === 'json' ? 'JSON' : 'multipart/form-data'} body could not be parsed to its end (bytes after its end?)`,
        null,
        kind === 'json' ? 'invalid_json' : 'invalid_multipart',
      );
    const onIdle = () =>
      settle(
        req.complete
          ? unparsable()
          : new ApiError(
              408,
              `the request body stalled: nothing received for ${timeouts.bodyTimeoutMs / 1000} s (--body_timeout)`,
              null,
              'body_timeout',
            ),
      );
    const settle = (error?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (watch) clearInterval(watch);
      if (timeouts.bodyTimeoutMs) {
        req.removeListener('timeout', onIdle);
        res.removeListener('timeout', onIdle);
        req.setTimeout(0);
      }
      stopBody.delete(req);
      if (error === undefined) return next();
      const apiError = bodyError(error, req, kind);
      // The rest of the body is not read: the connection ends once the answer is out.
      if (apiError.status === 408 || apiError.status === 413)
        res.once('finish', () => setTimeout(() => req.socket?.destroy(), 1000).unref());
      next(apiError);
    };
    if (timeouts.requestTimeoutMs)
      deadline = setTimeout(
        () =>
          settle(
            new ApiError(
              408,
              `the request body was not received within ${timeouts.requestTimeoutMs / 1000} s (--request_timeout)`,
              null,
              'request_timeout',
            ),
          ),
        timerMs(timeouts.requestTimeoutMs),
      ).unref();
    // The socket's idle timer: Node reports it on the request while its body is incomplete, else on the response.
    if (timeouts.bodyTimeoutMs) {
      req.setTimeout(timerMs(timeouts.bodyTimeoutMs), onIdle);
      res.on('timeout', onIdle);
    }
    // Once the whole body is in (req.complete), a parser finishes at once; one that does not never will (busboy, given
    // bytes after the closing boundary that open a new part, waits for that part's end forever): the body is malformed.
    let completeSince: number | undefined;
    const watch = setInterval(() => {
      if (!req.complete) return;
      completeSince ??= Date.now();
      if (Date.now() - completeSince >= PARSE_AFTER_END_MS) settle(unparsable());
    }, PARSE_AFTER_END_MS / 4).unref();
    stopBody.set(req, settle);
    parser(req, res, settle);
  };
}

/**
 * Feeds a multipart body to busboy, counting bytes: a body without Content-Length that grows past maxBytes ends the
 * body stage with a 413 at once (multer would read on to the end).
 */
export function countingStreamHandler(maxBytes: number) {
  return (req: http.IncomingMessage, busboy: NodeJS.WritableStream): void => {
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxBytes) {
        req.unpipe(busboy as NodeJS.WritableStream & import('stream').Writable);
        stopBody.get(req)?.(tooLarge(maxBytes, `(over ${received} bytes received)`));
      }
    });
    req.pipe(busboy);
  };
}

/** Refuses a request whose Expect header asks for something other than 100-continue (RFC 9110: 417). */
export const refuseExpectation: RequestHandler = (req, _res, next) => {
  if (!unmetExpectation.has(req)) return next();
  next(new ApiError(417, `Expect: ${String(req.headers.expect)} is not supported (only 100-continue is)`, null, 'expectation_failed'));
};

const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'the request was not received in time (--headers_timeout, --request_timeout)', 'request_timeout'],
  HPE_HEADER_OVERFLOW: [431, 'the request headers are too large', 'headers_too_large'],
};

/**
 * What Node's HTTP parser refuses before the app sees a request (a malformed request line or header, a bad
 * Content-Length, headers that never end), answered as OpenAI-shaped JSON instead of Node's bare status line.
 */
function answerClientError(error: Error & { code?: string }, socket: import('stream').Duplex): void {
  const response = (socket as { _httpMessage?: http.ServerResponse })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || response?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, message, code] = CLIENT_ERRORS[error.code ?? ''] ?? [
    400,
    `the request is not valid HTTP (${error.code ?? 'parse error'})`,
    'invalid_http',
  ];
  const body = JSON.stringify(new ApiError(status, message, null, code).body());
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * The HTTP server for an app, with the timeouts and Expect handling above: "Expect: 100-continue" is answered by the
 * app (a refusal such as 401 or 413 comes without "100 Continue", the body is asked for only when a parser reads it),
 * and other expectations get an OpenAI-shaped 417.
 */
export function createHttpServer(app: http.RequestListener, timeouts: RequestTimeouts = DEFAULT_TIMEOUTS): http.Server {
  // Node checks headersTimeout/requestTimeout on this interval (default 30 s, too coarse for a 408 to be prompt).
  const check = Math.max(250, Math.min(timeouts.headersTimeoutMs || 30_000, 5_000) / 4);
  const server = http.createServer({ connectionsCheckingInterval: check }, app);
  server.headersTimeout = timeouts.headersTimeoutMs;
  // Node's own limit on receiving a request is a backstop (the body stage answers first, with a JSON 408). It also
  // ends connections whose unread body never comes. It does not limit how long a response (a generation) takes.
  server.requestTimeout = timeouts.requestTimeoutMs ? timeouts.headersTimeoutMs + timeouts.requestTimeoutMs + 5_000 : 0;
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    awaitingContinue.add(req);
    app(req, res);
  });
  server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => {
    unmetExpectation.add(req);
    app(req, res);
  });
  server.on('clientError', answerClientError);
  return server;
}
