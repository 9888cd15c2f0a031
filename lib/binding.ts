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
export interface NativeDiffusionModel {
  generate(
    task: NativeTask,
    params: NativeParams,
    images: { image?: NativeRawImage; mask?: NativeRawImage },
    onStep: ((step: number, total: number, preview?: NativeImages) => void) | undefined,
    previews: number,
  ): NativeJob;
  /** Throws what generate() would; returns the size, image count and steps the call resolves to. */
  validate(task: NativeTask, params: NativeParams, images: { image?: NativeRawImage; mask?: NativeRawImage }): NativeCallShape;
  info(): { className: string; loadMs: number; tasks: NativeTask[]; adapters: NativeAdapterReport[] };
  dispose(): void;
}

export interface NativeBinding {
  openvinoVersion(): string;
  availableDevices(): string[];
  sourceHash(): string;
  /** The engine's generation parameters (lib/parameters.ts declares the same; a test compares them). */
  generationParameters(): Array<{ name: string; kind: string }>;
  allocatorTuning(): { applied: boolean; mmapThreshold: number; reason: string };
  loadTokenizersExtension(libraryPath: string): void;
  DiffusionModel: {
    load(
      modelDir: string,
      devices: NativeDevices,
      properties: Record<string, PropertyValue>,
      lora: { adapters: NativeAdapterSpec[]; mode: 'dynamic' | 'fuse' },
      reshape?: NativeStaticShape,
    ): Promise<NativeDiffusionModel>;
  };
  IrModel: { load(xmlPath: string, device?: string, properties?: Record<string, PropertyValue>): Promise<NativeIrModel> };
}

export const PACKAGE_ROOT = path.resolve(__dirname, '..');

interface RuntimePaths {
  sitePackages: string;
  tokenizersLibrary: string;
}

// Shared with the install script so both agree on where the runtime lives.
const runtime = require(path.join(PACKAGE_ROOT, 'scripts', 'runtime.js')) as {
  runtimePaths(): RuntimePaths;
  missingPieces(dir: string): string[];
  ENV_VAR: string;
};

let cached: NativeBinding | undefined;

export function binding(): NativeBinding {
  if (cached) return cached;
  const paths = runtime.runtimePaths();
  const missing = runtime.missingPieces(paths.sitePackages);
  if (missing.length) {
    throw new OvDiffusionError(
      'ERR_BINDING',
      `the OpenVINO Runtime is not installed in ${paths.sitePackages} (missing ${missing.map((m) => path.basename(m)).join(', ')}). ` +
        `Run \`npm rebuild ov-diffusion\` (needs python3 with pip), or set ${runtime.ENV_VAR} to a site-packages ` +
        'folder with the pinned openvino and openvino-tokenizers, then rebuild.',
    );
  }
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
  const tokenizers = process.env.OV_DIFFUSION_TOKENIZERS_LIBRARY ?? paths.tokenizersLibrary;
  if (!fs.existsSync(tokenizers)) throw new OvDiffusionError('ERR_BINDING', `openvino_tokenizers library not found: ${tokenizers}`);
  try {
    native.loadTokenizersExtension(tokenizers);
  } catch (error) {
    throw fromNative(error);
  }
  cached = native;
  return native;
}
