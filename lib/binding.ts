// The one place that loads the native module and owns its interface.
import * as fs from 'fs';
import * as path from 'path';
import { OvDiffusionError, fromNative } from './errors';
import type { AdapterChoice, EngineParameters } from './parameters';

export type TensorType = 'f32' | 'f16' | 'i64' | 'i32' | 'u8';
export interface NativeTensor {
  type: TensorType;
  shape: number[];
  data: Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;
}
export interface NativePort {
  name: string;
  type: string;
  shape: string;
}
export type PropertyValue = string | number | boolean;

export interface NativeIrModel {
  infer(inputs: Record<string, NativeTensor>): Promise<Record<string, NativeTensor>>;
  inputs(): NativePort[];
  outputs(): NativePort[];
  compileMs(): number;
  dispose(): void;
}

export interface NativeDevices {
  textEncoder?: string;
  denoiser?: string;
  vae?: string;
}
export type NativeTask = 'text2image' | 'image2image' | 'inpainting';
/** What the addon reads for one call: the prompt, the generation parameters by their engine names, the adapters. */
export type NativeParams = { prompt: string } & EngineParameters & { adapters?: AdapterChoice[] };
export interface NativeAdapterSpec {
  name: string;
  path: string;
  alpha?: number;
}
/** Static shapes (openvino-genai's reshape): one image size, image count and guidance batch for every submodel. */
export interface NativeStaticShape {
  width: number;
  height: number;
  numImagesPerPrompt?: number;
  guidanceScale?: number;
}
export interface NativeAdapterReport {
  name: string;
  matchedLayers: number;
  unmatchedKeys: string[];
}
export interface NativeRawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}
export interface NativeImages {
  count: number;
  width: number;
  height: number;
  data: Buffer;
}
export interface NativeMetrics {
  textEncodeMs: number;
  vaeEncodeMs: number;
  vaeDecodeMs: number;
  totalMs: number;
  stepMs: number[];
  warmupCalls: number;
  denoiserMs: number[];
  textEncoderMs: Record<string, number>;
  adapterApplyMs: number;
}
export interface NativeResult extends NativeImages {
  steps: number;
  seed: number;
  scheduler: string;
  metrics: NativeMetrics;
}
export interface NativeCallShape {
  width: number;
  height: number;
  numImagesPerPrompt: number;
  numInferenceSteps: number;
}
export interface NativeJob {
  promise: Promise<NativeResult>;
  cancel(): void;
}
/** A request converted once by the addon and checked by the engine (opaque to JS). */
export interface NativePreparedRequest {
  readonly __preparedRequest: never;
}
export interface NativeDiffusionModel {
  /**
   * Throws what generate() would refuse, so a bad request is refused before it waits for a slot; returns the request
   * to generate and the size, image count and steps it resolves to.
   */
  prepare(
    task: NativeTask,
    params: NativeParams,
    images: { image?: NativeRawImage; mask?: NativeRawImage },
  ): { request: NativePreparedRequest; shape: NativeCallShape };
  generate(
    request: NativePreparedRequest,
    onStep: ((step: number, total: number, preview?: NativeImages) => void) | undefined,
    previews: number,
    previewMode: 'fast' | 'full',
  ): NativeJob;
  info(): { className: string; loadMs: number; tasks: NativeTask[]; adapters: NativeAdapterReport[]; schedulers: string[] };
  dispose(): void;
}

export interface NativeBinding {
  openvinoVersion(): string;
  availableDevices(): string[];
  sourceHash(): string;
  /** The engine's generation parameters (lib/parameters.ts declares the same; a test compares them). */
  generationParameters(): Array<{ name: string; kind: string }>;
  /** Every scheduler name the engine accepts (lib/parameters.ts declares the same; a test compares them). */
  schedulerNames(): string[];
  allocatorTuning(): { applied: boolean; mmapThreshold: number; reason: string };
  loadTokenizersExtension(libraryPath: string): void;
  DiffusionModel: {
    load(
      modelDir: string,
      devices: NativeDevices,
      properties: Record<string, PropertyValue>,
      lora: { adapters: NativeAdapterSpec[]; mode: 'dynamic' | 'fuse' },
      reshape?: NativeStaticShape,
      deepcache?: { branch: number },
    ): Promise<NativeDiffusionModel>;
  };
  IrModel: { load(xmlPath: string, device?: string, properties?: Record<string, PropertyValue>): Promise<NativeIrModel> };
}

export const PACKAGE_ROOT = path.resolve(__dirname, '..');

/**
 * The OpenVINO Runtime installation as `npm install` recorded it (scripts/runtime.js writes the file): paths relative
 * to the package.
 */
interface InstalledRuntime {
  tokenizersLibrary: string;
  required: string[];
}
const RUNTIME_MANIFEST = path.join(PACKAGE_ROOT, 'runtime', 'openvino-runtime.json');

function installedRuntime(): InstalledRuntime {
  let manifest: InstalledRuntime | undefined;
  try {
    manifest = JSON.parse(fs.readFileSync(RUNTIME_MANIFEST, 'utf8')) as InstalledRuntime;
  } catch {
    manifest = undefined;
  }
  const missing = manifest ? manifest.required.filter((file) => !fs.existsSync(path.resolve(PACKAGE_ROOT, file))) : [RUNTIME_MANIFEST];
  if (manifest && !missing.length) return manifest;
  throw new OvDiffusionError(
    'ERR_BINDING',
    `the OpenVINO Runtime is not installed in ${path.join(PACKAGE_ROOT, 'runtime')} (missing ${missing.map((m) => path.basename(m)).join(', ')}). ` +
      'Run `npm rebuild ov-diffusion` (needs python3 with pip), or set OV_DIFFUSION_OPENVINO_DIR to a site-packages ' +
      'folder with the pinned openvino and openvino-tokenizers, then rebuild.',
  );
}

let cached: NativeBinding | undefined;

export function binding(): NativeBinding {
  if (cached) return cached;
  const runtime = installedRuntime();
  let native: NativeBinding;
  try {
    native = require('node-gyp-build')(PACKAGE_ROOT) as NativeBinding;
  } catch (error) {
    throw new OvDiffusionError(
      'ERR_BINDING',
      `cannot load the ov-diffusion native addon: ${(error as Error).message}. ` +
        'Run `npm rebuild ov-diffusion` to build it for this platform.',
      { cause: error },
    );
  }
  const tokenizers = process.env.OV_DIFFUSION_TOKENIZERS_LIBRARY ?? path.resolve(PACKAGE_ROOT, runtime.tokenizersLibrary);
  if (!fs.existsSync(tokenizers)) throw new OvDiffusionError('ERR_BINDING', `openvino_tokenizers library not found: ${tokenizers}`);
  try {
    native.loadTokenizersExtension(tokenizers);
  } catch (error) {
    throw fromNative(error);
  }
  cached = native;
  return native;
}
