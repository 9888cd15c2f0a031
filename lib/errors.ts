import { parameterNameOf } from './parameters';

/** Stable error codes. Native errors carry the same codes. */
export type ErrorCode =
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_MODEL_NOT_FOUND'
  | 'ERR_UNSUPPORTED_MODEL'
  | 'ERR_RUNTIME'
  | 'ERR_ABORTED'
  | 'ERR_DISPOSED'
  | 'ERR_INTERNAL'
  | 'ERR_BINDING'
  | 'ERR_QUEUE_FULL'
  | 'ERR_QUEUE_TIMEOUT';

export class OvDiffusionError extends Error {
  readonly code: ErrorCode;
  /**
   * The input at fault, when one is: a generation option by its library name (e.g. 'numInferenceSteps'), or
   * 'image', 'mask', 'adapters', 'prompt'.
   */
  readonly param?: string;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; param?: string }) {
    super(message, options);
    this.name = 'OvDiffusionError';
    this.code = code;
    if (options?.param !== undefined) this.param = options.param;
  }
}

const KNOWN_CODES = new Set<string>([
  'ERR_INVALID_ARGUMENT',
  'ERR_MODEL_NOT_FOUND',
  'ERR_UNSUPPORTED_MODEL',
  'ERR_RUNTIME',
  'ERR_ABORTED',
  'ERR_DISPOSED',
  'ERR_INTERNAL',
  'ERR_BINDING',
  'ERR_QUEUE_FULL',
  'ERR_QUEUE_TIMEOUT',
]);

/** Turns an error thrown by the native layer into an OvDiffusionError, keeping the caller's stack. */
export function fromNative(error: unknown, callSiteStack?: string): OvDiffusionError {
  if (error instanceof OvDiffusionError) return error;
  const e = error as { code?: unknown; message?: unknown; param?: unknown };
  const code = typeof e?.code === 'string' && KNOWN_CODES.has(e.code) ? (e.code as ErrorCode) : 'ERR_INTERNAL';
  // The engine names a parameter as it does (num_inference_steps); the library user knows it as numInferenceSteps.
  const param = typeof e?.param === 'string' ? (parameterNameOf(e.param) ?? e.param) : undefined;
  const wrapped = new OvDiffusionError(code, String(e?.message ?? error), { cause: error, param });
  if (callSiteStack) wrapped.stack = `${wrapped.name}: ${wrapped.message}\n${callSiteStack.split('\n').slice(1).join('\n')}`;
  return wrapped;
}

/** Runs a native call that returns a promise, mapping its errors and keeping the JS call site. */
export async function callNative<T>(run: () => Promise<T>): Promise<T> {
  const callSite = new Error().stack;
  try {
    return await run();
  } catch (error) {
    throw fromNative(error, callSite);
  }
}
