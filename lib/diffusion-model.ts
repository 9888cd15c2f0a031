// A loaded model folder and the three generation tasks on it. The text-to-image, image-to-image and
// inpainting pipelines built from one folder share one DiffusionModel, so weights load once.
import {
  binding,
  NativeAdapterReport,
  NativeCallShape,
  NativeParams,
  NativePreparedRequest,
  NativeDiffusionModel,
  NativeRawImage,
  NativeResult,
  NativeStaticShape,
  NativeTask,
  PropertyValue,
} from './binding';
import { AdapterFiles, AdapterPresets, AdapterRegistry, AdapterSelection } from './adapters';
import { OvDiffusionError, callNative, fromNative } from './errors';
import { DEFAULT_MAX_INPUT_PIXELS, GeneratedImage, ImageInput, decodeImage, splitImages } from './images';
import { GenerationJob, JobOptions } from './job';
import { ConcurrencyLimiter } from './limiter';
import { ModelFamily, modelFamily } from './families';
import { AdapterChoice, GenerationParameters, PREVIEW_MODES, PreviewMode, SchedulerName, toEngineParameters } from './parameters';

export type Task = NativeTask;

export type { AdapterSelection } from './adapters';
export type { PreviewMode, SchedulerName, TaylorSeerOptions } from './parameters';

/** One device for every submodel, or one each for the text encoders, the UNet/transformer and the VAE. */
export type DeviceSpec = string | { textEncoder?: string; denoiser?: string; vae?: string };

export interface LoadOptions {
  device?: DeviceSpec;
  /** OpenVINO compile properties for every submodel, e.g. { CACHE_DIR: './cache', PERFORMANCE_HINT: 'LATENCY' }. */
  properties?: Record<string, PropertyValue>;
  /** generate() calls that may run at once on this model; more wait in order (default 1). */
  maxConcurrency?: number;
  /** Calls that may wait for a slot; beyond that a call fails at once with ERR_QUEUE_FULL (default: unbounded). */
  maxQueue?: number;
  /** Longest wait for a slot, in ms, before ERR_QUEUE_TIMEOUT (default: no limit). */
  queueTimeoutMs?: number;
  /** Largest decoded input image, in pixels (default 8192 x 8192). */
  maxInputPixels?: number;
  /** LoRA adapters (.safetensors) by alias, with the alpha used when a call names them without one (default 1). */
  adapters?: AdapterFiles;
  /**
   * 'dynamic' (default): calls choose adapters and alphas freely, nothing recompiles.
   * 'fuse': every registered adapter is merged into the weights at load (faster steps, fixed choice).
   */
  adapterMode?: 'dynamic' | 'fuse';
  /** Named blends of registered adapters, e.g. { 'ink-and-wash': { ink: 0.6, wash: 0.4 } }; a call selects one by name. */
  adapterPresets?: AdapterPresets;
  /**
   * Static shapes, as openvino-genai's reshape(): every submodel is compiled for this image size and count
   * (default 1) and for guidance on or off (guidanceScale > 1; default: the model's own default). Faster on
   * some devices and needed by NPU-style ones. Calls then default to these values and refuse other sizes,
   * counts, or a guidanceScale on the other side of 1.
   */
  reshape?: StaticShapeOptions;
  /**
   * DeepCache, for UNet models (SD 1.x/2.x, SDXL, LCM): the UNet is cut at load into its whole graph (with the deep
   * feature as an extra output) and a shallow graph that reuses that feature, so that calls may set
   * `deepcacheInterval` (every n-th UNet call runs the whole UNet, the others only the shallow part). `true` cuts at
   * branch 0 (the shallowest part: the fastest cached calls); `{ branch }` cuts deeper (slower, closer to the
   * uncached image). Calls without deepcacheInterval (or with 1) give the uncached pixels. Off by default.
   */
  deepcache?: boolean | { branch?: number };
}

export type StaticShapeOptions = NativeStaticShape;

export type AdapterReport = NativeAdapterReport;

/**
 * Options of one call: the generation parameters of lib/parameters.ts (GENERATION_PARAMETERS lists them with their
 * defaults; unset ones take the model's defaults, as openvino_genai chooses them), and what only the library takes.
 */
export interface GenerateOptions extends GenerationParameters {
  /** LoRA adapters for this call (default: none, the base model). */
  adapters?: AdapterSelection;
  signal?: AbortSignal;
  onStep?: (progress: StepProgress) => void;
  /** How many previews to deliver through onStep, at evenly spread steps. */
  previews?: number;
  /**
   * How previews are made: 'full' (default) decodes each with the VAE, as the final image; 'fast' renders them with a
   * linear latent-to-RGB map the model fits from one VAE decode at its first fast preview, at almost no cost.
   */
  previewMode?: PreviewMode;
  /**
   * Called once the call is validated, before it waits for a slot, with what it will run: the size after the
   * model's defaults (e.g. an image-to-image input's own size), the image count and the steps. Throwing refuses
   * the call with that error; a server applies its size and memory limits here.
   */
  admit?: (plan: CallPlan) => void;
  /**
   * Called when the call has to wait for a slot (maxConcurrency), with its 1-based place in the model's queue
   * (1 = the next to run), and again each time it moves up.
   */
  onQueuePosition?: (position: number) => void;
  /** Called when the call has its slot and starts running, after any wait in the queue. */
  onRunning?: () => void;
}

/** What a validated call will run (see GenerateOptions.admit). */
export interface CallPlan extends NativeCallShape {
  task: Task;
}

export interface StepProgress {
  /** 0-based index of the step that just finished. */
  step: number;
  totalSteps: number;
  preview?: GeneratedImage[];
}

export interface GenerationMetrics {
  textEncodeMs: number;
  vaeEncodeMs: number;
  vaeDecodeMs: number;
  /** Wall time of each step, as many as the steps asked (after strength); a warm-up call's time is in its step. */
  stepMs: number[];
  /** Denoiser calls that are no step of their own: PNDM evaluates its first timestep twice (1), HEUN makes two calls per step but the last (steps - 1), others 0. */
  warmupCalls: number;
  /** Each denoiser inference: steps + warm-up calls (fewer on SD3/FLUX steps that TaylorSeer predicts). */
  denoiserMs: number[];
  /** Per text encoder, named as openvino-genai's metrics name them (e.g. text_encoder, text_encode_3). */
  textEncoderMs: Record<string, number>;
  /** Setting LoRA adapter states for this call (0 when the requests already held its adapter set); part of the other times. */
  adapterApplyMs: number;
  /** Time inside the engine. */
  totalMs: number;
  /** Time spent waiting for a free slot (maxConcurrency). */
  queueMs: number;
}

export interface GenerationResult {
  images: GeneratedImage[];
  seed: number;
  steps: number;
  scheduler: string;
  width: number;
  height: number;
  metrics: GenerationMetrics;
}

function toDevices(device: DeviceSpec | undefined) {
  if (device === undefined) return {};
  if (typeof device === 'string') return { textEncoder: device, denoiser: device, vae: device };
  return device;
}

function toDeepCache(deepcache: LoadOptions['deepcache']): { branch: number } | undefined {
  if (deepcache === undefined || deepcache === false) return undefined;
  if (deepcache === true) return { branch: 0 };
  const branch = deepcache?.branch ?? 0;
  if (deepcache === null || typeof deepcache !== 'object' || !Number.isInteger(branch) || branch < 0)
    throw new OvDiffusionError('ERR_INVALID_ARGUMENT', 'deepcache must be true, false or { branch } with an integer branch >= 0');
  return { branch };
}

export class DiffusionModel {
  private native: NativeDiffusionModel | null;
  private readonly limiter: ConcurrencyLimiter;
  private readonly maxInputPixels: number;
  private readonly adapterRegistry: AdapterRegistry;
  readonly className: string;
  /** The model family of className (e.g. 'Z-Image' for ZImagePipeline). */
  readonly family: ModelFamily | undefined;
  /** Per registered adapter: how many layers it modifies, and its keys that fit no layer of this model. */
  readonly adapters: readonly AdapterReport[];
  readonly tasks: readonly Task[];
  /** The schedulers its calls accept: AUTO and those of its folder's kind (UNet or flow matching). */
  readonly schedulers: readonly SchedulerName[];
  readonly loadMs: number;

  private constructor(native: NativeDiffusionModel, options: LoadOptions, limiter: ConcurrencyLimiter, adapters: AdapterRegistry) {
    this.native = native;
    this.limiter = limiter;
    this.maxInputPixels = options.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
    this.adapterRegistry = adapters;
    const info = native.info();
    this.adapters = Object.freeze(info.adapters);
    this.className = info.className;
    this.family = modelFamily(info.className);
    this.tasks = Object.freeze([...info.tasks]);
    this.schedulers = Object.freeze(info.schedulers as SchedulerName[]);
    this.loadMs = info.loadMs;
  }

  /** Reads and compiles the model folder on a worker thread. */
  static async load(modelDir: string, options: LoadOptions = {}): Promise<DiffusionModel> {
    const limiter = new ConcurrencyLimiter(options.maxConcurrency ?? 1, {
      maxQueue: options.maxQueue,
      queueTimeoutMs: options.queueTimeoutMs,
    });
    const adapters = new AdapterRegistry(options.adapters, options.adapterPresets);
    const mode = options.adapterMode ?? 'dynamic';
    if (mode !== 'dynamic' && mode !== 'fuse')
      throw new OvDiffusionError('ERR_INVALID_ARGUMENT', "adapterMode must be 'dynamic' or 'fuse'");
    const { reshape } = options;
    if (reshape !== undefined && (reshape === null || typeof reshape !== 'object'))
      throw new OvDiffusionError('ERR_INVALID_ARGUMENT', 'reshape must be {width, height, numImagesPerPrompt?, guidanceScale?}');
    const native = await callNative(() =>
      binding().DiffusionModel.load(
        modelDir,
        toDevices(options.device),
        options.properties ?? {},
        { adapters: [...adapters.specs], mode },
        reshape,
        toDeepCache(options.deepcache),
      ),
    );
    return new DiffusionModel(native, options, limiter, adapters);
  }

  /** generate() calls running now, and waiting for a slot. */
  get running(): number {
    return this.limiter.active;
  }
  get waiting(): number {
    return this.limiter.queued;
  }

  supports(task: Task): boolean {
    return this.tasks.includes(task);
  }

  text2image(prompt: string, options: GenerateOptions = {}): Promise<GenerationResult> {
    return this.run('text2image', prompt, {}, options);
  }

  async image2image(prompt: string, image: ImageInput, options: GenerateOptions = {}): Promise<GenerationResult> {
    const raw = await decodeImage(image, { what: 'image', maxPixels: this.maxInputPixels });
    return this.run('image2image', prompt, { image: raw }, options);
  }

  /** White mask pixels are repainted, black ones kept. Outpainting: the image on a larger canvas, the new border white in the mask. */
  async inpaint(prompt: string, image: ImageInput, mask: ImageInput, options: GenerateOptions = {}): Promise<GenerationResult> {
    const [rawImage, rawMask] = await Promise.all([
      decodeImage(image, { what: 'image', maxPixels: this.maxInputPixels }),
      decodeImage(mask, { what: 'mask', maxPixels: this.maxInputPixels }),
    ]);
    if (rawImage.width !== rawMask.width || rawImage.height !== rawMask.height)
      throw new OvDiffusionError(
        'ERR_INVALID_ARGUMENT',
        `image (${rawImage.width}x${rawImage.height}) and mask (${rawMask.width}x${rawMask.height}) must have the same size`,
        { param: 'mask' },
      );
    return this.run('inpainting', prompt, { image: rawImage, mask: rawMask }, options);
  }

  /**
   * Starts a call and returns its job handle (state, events, cancel()) at once: text-to-image, or with `image`
   * image-to-image, with `image` and `mask` inpainting. The call runs as text2image / image2image / inpaint would.
   */
  submit(prompt: string, options: JobOptions = {}): GenerationJob {
    const { image, mask, ...rest } = options;
    if (mask !== undefined && image === undefined)
      throw new OvDiffusionError('ERR_INVALID_ARGUMENT', 'a mask needs an image to inpaint', { param: 'image' });
    return new GenerationJob((call) => {
      if (image === undefined) return this.text2image(prompt, call);
      if (mask === undefined) return this.image2image(prompt, image, call);
      return this.inpaint(prompt, image, mask, call);
    }, rest);
  }

  /** The registered adapters and alphas a selection means on this model (presets expanded, default alphas filled in). */
  adapterChoices(selection: AdapterSelection): AdapterChoice[] {
    return this.adapterRegistry.choices(selection);
  }

  private handle(): NativeDiffusionModel {
    if (!this.native) throw new OvDiffusionError('ERR_DISPOSED', 'the model was disposed');
    return this.native;
  }

  private async run(
    task: Task,
    prompt: string,
    images: { image?: NativeRawImage; mask?: NativeRawImage },
    options: GenerateOptions,
  ): Promise<GenerationResult> {
    if (typeof prompt !== 'string') throw new OvDiffusionError('ERR_INVALID_ARGUMENT', 'prompt must be a string', { param: 'prompt' });
    if (!this.supports(task))
      throw new OvDiffusionError('ERR_INVALID_ARGUMENT', `${this.className} supports ${this.tasks.join(', ')} only, not ${task}`);
    const params: NativeParams = { prompt, ...toEngineParameters(options) };
    if (options.adapters !== undefined && options.adapters !== null) params.adapters = this.adapterChoices(options.adapters);
    const { signal, onStep } = options;
    const previews = options.previews ?? 0;
    if (!Number.isInteger(previews) || previews < 0)
      throw new OvDiffusionError('ERR_INVALID_ARGUMENT', 'previews must be a non-negative integer', { param: 'previews' });
    const previewMode = options.previewMode ?? 'full';
    if (!PREVIEW_MODES.includes(previewMode))
      throw new OvDiffusionError('ERR_INVALID_ARGUMENT', `previewMode must be one of ${PREVIEW_MODES.join(', ')}`, {
        param: 'previewMode',
      });
    // Refuse a bad request now rather than after it waited for a slot.
    let prepared: NativePreparedRequest;
    let shape: NativeCallShape;
    try {
      ({ request: prepared, shape } = this.handle().prepare(task, params, images));
    } catch (error) {
      throw fromNative(error);
    }
    options.admit?.({ task, ...shape });
    const queuedAt = performance.now();
    const abortError = () => new OvDiffusionError('ERR_ABORTED', 'the generation was cancelled', { cause: signal?.reason });
    return this.limiter
      .run(
        async () => {
          const queueMs = performance.now() - queuedAt;
          const native = this.handle();
          if (signal?.aborted) throw abortError();
          options.onRunning?.();
          const stepListener = onStep
            ? (step: number, total: number, preview?: { count: number; width: number; height: number; data: Buffer }) =>
                onStep({
                  step,
                  totalSteps: total,
                  preview: preview && splitImages(preview.data, preview.count, preview.width, preview.height),
                })
            : undefined;
          let job: ReturnType<NativeDiffusionModel['generate']>;
          const callSite = new Error().stack;
          try {
            job = native.generate(prepared, stepListener, previews, previewMode);
          } catch (error) {
            throw fromNative(error, callSite);
          }
          const onAbort = () => job.cancel();
          signal?.addEventListener('abort', onAbort, { once: true });
          let result: NativeResult;
          try {
            result = await callNative(() => job.promise);
          } catch (error) {
            if (signal?.aborted) throw abortError();
            throw error;
          } finally {
            signal?.removeEventListener('abort', onAbort);
          }
          return {
            images: splitImages(result.data, result.count, result.width, result.height),
            seed: result.seed,
            steps: result.steps,
            scheduler: result.scheduler,
            width: result.width,
            height: result.height,
            metrics: { ...result.metrics, queueMs },
          };
        },
        signal,
        options.onQueuePosition,
      )
      .catch((error: unknown) => {
        if (signal?.aborted && !(error instanceof OvDiffusionError)) throw abortError();
        throw error;
      });
  }

  /** Releases the model; calls already running finish first. */
  dispose(): void {
    this.native?.dispose();
    this.native = null;
  }
}
