// OpenAI-shaped HTTP errors: {"error": {"message", "type", "param", "code"}} with a proper status.
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { IncomingMessage } from 'http';
import { OvDiffusionError } from '../errors';
import { GENERATION_PARAMETERS } from '../parameters';

/** As the OpenAI API: every 4xx is an invalid_request_error, every 5xx a server_error. */
export type ErrorType = 'invalid_request_error' | 'server_error';

/** Longest error message sent or logged; longer ones (a client's huge value quoted in) are cut. */
export const MESSAGE_LIMIT = 1000;
// C0/C1 controls, DEL, bidi embeddings/overrides/isolates, marks and line separators: escaped so that a client's text
// quoted into a message cannot reorder or break a log line or a terminal.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** Escapes unsafe characters and cuts the text to `limit` characters, saying how much was cut. */
export function safeText(text: string, limit = MESSAGE_LIMIT): string {
  const head = text.length > limit ? text.slice(0, limit) : text;
  const escaped = head.replace(UNSAFE_CHARS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return text.length > limit ? `${escaped}... (${text.length - limit} more characters)` : escaped;
}

/**
 * A client's value as a message quotes it: strings quoted and cut to `limit`, numbers and booleans as they are,
 * arrays and objects by kind and size only. Never recursive, so any depth or size of JSON is described in bounded time.
 */
export function shown(value: unknown, limit = 60): string {
  if (typeof value === 'string') return `'${safeText(value, limit)}'`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return `an array of ${value.length} item(s)`;
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type: ErrorType = defaultType(status),
  ) {
    super(safeText(message));
    this.name = 'ApiError';
    if (param !== null) this.param = safeText(param, 100);
  }

  /** Extra response headers (Retry-After, x-should-retry). */
  readonly headers: Record<string, string> = {};

  withHeader(name: string, value: string | number): this {
    this.headers[name.toLowerCase()] = String(value);
    return this;
  }

  body() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

function defaultType(status: number): ErrorType {
  return status >= 500 ? 'server_error' : 'invalid_request_error';
}

/** 400 naming the field. */
export const badField = (param: string, message: string, code: string | null = 'invalid_value') => new ApiError(400, message, param, code);

/** The request field for the library's `param` (its option name): the table's field, or the input's own name. */
function requestField(param: string | undefined): string | null {
  if (param === undefined) return null;
  const spec = GENERATION_PARAMETERS.find((p) => p.name === param);
  if (spec) return spec.field;
  return param === 'adapters' ? 'model' : param;
}

/** The library's error codes onto HTTP. Input that is too large (the decoded-pixel limit) is a 413. */
export function fromLibraryError(error: OvDiffusionError): ApiError {
  switch (error.code) {
    case 'ERR_INVALID_ARGUMENT': {
      const param = requestField(error.param);
      if (/exceeds the limit/.test(error.message)) return new ApiError(413, error.message, param, 'image_too_large');
      return new ApiError(400, error.message, param, 'invalid_value');
    }
    case 'ERR_ABORTED':
      return new ApiError(499, 'the request was cancelled', null, 'cancelled');
    case 'ERR_DISPOSED':
      return new ApiError(503, 'the model is being unloaded', null, 'model_unavailable');
    case 'ERR_MODEL_CHANGED':
      // Not the client's doing, and the same on every try until the model is loaded again (restart).
      return new ApiError(503, `the model cannot run: ${error.message}`, null, 'model_changed');
    case 'ERR_QUEUE_FULL':
      return new ApiError(429, `the model is busy: ${error.message}; try again later`, null, 'queue_full');
    case 'ERR_QUEUE_TIMEOUT':
      return new ApiError(
        503,
        `timed out waiting for a free slot: ${error.message}; the server is overloaded, try again later`,
        null,
        'queue_timeout',
      );
    default:
      return new ApiError(500, `image generation failed: ${error.message}`, null, error.code.toLowerCase());
  }
}

/** Anything thrown into express becomes an OpenAI error body; body-parser and multer errors keep their meaning. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof OvDiffusionError) return fromLibraryError(error);
  const e = error as { type?: string; status?: number; code?: string; field?: string; message?: string; name?: string };
  if (e?.type === 'entity.too.large')
    return new ApiError(413, `the request body exceeds the limit (${e.message})`, null, 'request_too_large');
  if (e?.type === 'entity.parse.failed') return new ApiError(400, `the body is not valid JSON: ${e.message}`, null, 'invalid_json');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported')
    return new ApiError(415, String(e.message), null, 'unsupported_encoding');
  if (e?.name === 'MulterError') {
    if (
      e.code === 'LIMIT_FILE_SIZE' ||
      e.code === 'LIMIT_FIELD_VALUE' ||
      e.code === 'LIMIT_PART_COUNT' ||
      e.code === 'LIMIT_FILE_COUNT' ||
      e.code === 'LIMIT_FIELD_COUNT'
    )
      return new ApiError(413, `${e.message}${e.field ? ` (${e.field})` : ''}`, e.field ?? null, 'request_too_large');
    return new ApiError(400, `${e.message}${e.field ? ` (${e.field})` : ''}`, e.field ?? null, 'invalid_multipart');
  }
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500)
    return new ApiError(e.status, String(e.message ?? 'bad request'), null, null);
  return new ApiError(500, `internal error: ${String(e?.message ?? error)}`, null, 'internal_error');
}

/** The request declares a body that has not been read to its end. */
export function bodyPending(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return !req.complete && ((length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined);
}

export function sendError(res: Parameters<RequestHandler>[1], error: ApiError): void {
  if (res.headersSent) return;
  // The OpenAI clients retry 5xx by default; a failed generation would only fail again.
  if (error.status >= 500) res.setHeader('x-should-retry', 'false');
  // An answer given before the body was read (401, 413, 408, ...) closes the connection: reading a body that may
  // never come (or is 100 GB) just to keep the connection alive would hold the socket.
  if (res.req && bodyPending(res.req)) res.setHeader('connection', 'close');
  for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  res.status(error.status).json(error.body());
}

export function errorHandler(log: (error: ApiError, cause: unknown, res: Parameters<RequestHandler>[1]) => void): ErrorRequestHandler {
  return (error, _req, res, _next) => {
    const apiError = toApiError(error);
    log(apiError, error, res);
    sendError(res, apiError);
  };
}

export const notFound: RequestHandler = (req, _res, next) =>
  next(new ApiError(404, `no route for ${req.method} ${req.path}`, null, 'unknown_url'));
