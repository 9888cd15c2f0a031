import { parameterNameOf } from './parameters';

/** Stable error codes, declared once. Native errors carry the same codes. */
export const ERROR_CODES = [
  'ERR_INVALID_ARGUMENT',
  'ERR_MODEL_NOT_FOUND',
  'ERR_UNSUPPORTED_MODEL',
  'ERR_MODEL_CHANGED',
  'ERR_RUNTIME',
  'ERR_ABORTED',
  'ERR_DISPOSED',
  'ERR_INTERNAL',
  'ERR_BINDING',
  'ERR_QUEUE_FULL',
  'ERR_QUEUE_TIMEOUT',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

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

const KNOWN_CODES = new Set<string>(ERROR_CODES);

/**
 * What a device failure needs on the machine, when OpenVINO's message shows a missing driver or compiler: the
 * plugins ship with the runtime, their drivers do not.
 */
const DEVICE_HINTS: ReadonlyArray<[RegExp, string]> = [
  [
    /libOpenCL\.so/,
    "the GPU device needs an OpenCL loader and Intel's GPU compute runtime (Debian/Ubuntu: apt-get install " +
      'ocl-icd-libopencl1 intel-opencl-icd; then check that the user may open /dev/dri/renderD*)',
  ],
  [
    /VCL compiler loading failed|npu_driver_compiler|level_zero|libze_loader/i,
    "the NPU device needs Intel's NPU driver with its compiler and the Level Zero loader (the linux-npu-driver " +
      'release packages: intel-driver-compiler-npu, intel-fw-npu, intel-level-zero-npu, and libze1), and /dev/accel/accel0',
  ],
  [/Device with "[^"]*" name is not registered/, 'availableDevices() lists the devices OpenVINO finds on this machine'],
];

/** The message with a hint appended when it shows a known device set-up problem. */
export function withDeviceHint(message: string): string {
  const hint = DEVICE_HINTS.find(([pattern]) => pattern.test(message));
  return hint ? `${message}\nHint: ${hint[1]}.` : message;
}

/** Turns an error thrown by the native layer into an OvDiffusionError, keeping the caller's stack. */
export function fromNative(error: unknown, callSiteStack?: string): OvDiffusionError {
  if (error instanceof OvDiffusionError) return error;
  const e = error as { code?: unknown; message?: unknown; param?: unknown };
  const code = typeof e?.code === 'string' && KNOWN_CODES.has(e.code) ? (e.code as ErrorCode) : 'ERR_INTERNAL';
  // The engine names a parameter as it does (num_inference_steps); the library user knows it as numInferenceSteps.
  const param = typeof e?.param === 'string' ? (parameterNameOf(e.param) ?? e.param) : undefined;
  const message = String(e?.message ?? error);
  const wrapped = new OvDiffusionError(code, code === 'ERR_RUNTIME' ? withDeviceHint(message) : message, { cause: error, param });
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
