// Memory admission: an estimate of the memory one generation adds at its peak, from the model folder's configs and
// what the call will run (size, image count, task), and a budget that the admitted requests must fit in. The
// coefficients are fitted on measurements (bench/memory-calibration.js; docs/server.md says how well they fit).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { CallPlan } from '../diffusion-model';

/** What the estimate reads from a model folder. */
export interface ModelMemoryProfile {
  className: string;
  /** Image pixels per latent pixel, per side (the VAE's scale factor). */
  latentScale: number;
  /** The VAE's activation elements per image pixel: each block's channels at its resolution, summed. */
  vaeChannels: number;
  /** Latent pixels per denoiser token, per side (a transformer's patch size; FLUX packs 2x2). */
  patch: number;
  /** The denoiser's activation elements per token: a UNet's block channels at their resolutions, summed; a
   * transformer's hidden size. */
  denoiserChannels: number;
  /** Classifier-free guidance doubles the denoiser's batch (not for FLUX or LCM). */
  guidanceBatch: 1 | 2;
}

function readJson(file: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

const numbers = (value: unknown): number[] => (Array.isArray(value) ? value.filter((v): v is number => typeof v === 'number') : []);

/** Elements per full-resolution pixel of a pyramid whose block i runs at 1/2^i of the size per side. */
const pyramid = (blocks: number[]) => blocks.reduce((sum, channels, i) => sum + channels / 4 ** i, 0);

/**
 * The profile of a model folder (optimum-intel layout); unknown fields fall back to SD 1.5's. A server passes the
 * pipeline class its loaded model reports, so model_index.json is not read a second time.
 */
export function modelMemoryProfile(dir: string, loadedClassName?: string): ModelMemoryProfile {
  const className =
    loadedClassName ?? String((readJson(path.join(dir, 'model_index.json')) ?? {})._class_name ?? 'StableDiffusionPipeline');
  const vae = readJson(path.join(dir, 'vae_decoder', 'config.json')) ?? {};
  // Qwen-Image's VAE (AutoencoderKLQwenImage) gives base_dim x dim_mult per level and one halving per temperal_downsample entry.
  const qwenVae = Array.isArray(vae.temperal_downsample);
  const vaeBlocks = qwenVae ? numbers(vae.dim_mult).map((m) => m * Number(vae.base_dim ?? 96)) : numbers(vae.block_out_channels);
  const latentScale = qwenVae ? 2 ** (vae.temperal_downsample as unknown[]).length : vaeBlocks.length ? 2 ** (vaeBlocks.length - 1) : 8;
  const vaeChannels = vaeBlocks.length ? pyramid(vaeBlocks) : pyramid([128, 256, 512, 512]);
  const unet = readJson(path.join(dir, 'unet', 'config.json'));
  const transformer = readJson(path.join(dir, 'transformer', 'config.json'));
  const flux = /^Flux/.test(className);
  // FLUX.1 runs without classifier-free guidance; FLUX.2 klein guides unless model_index.json says it is distilled.
  const guided = !flux || (/^Flux2Klein/.test(className) && (readJson(path.join(dir, 'model_index.json')) ?? {}).is_distilled !== true);
  if (transformer) {
    const heads = Number(transformer.num_attention_heads ?? 24);
    const headDim = Number(transformer.attention_head_dim ?? 64);
    // Z-Image's config names its width `dim` and its patch `all_patch_size`.
    const width = typeof transformer.dim === 'number' ? transformer.dim : heads * headDim;
    const patch = numbers(transformer.all_patch_size)[0] ?? Number(transformer.patch_size ?? 2);
    return {
      className,
      latentScale,
      vaeChannels,
      patch: flux ? 2 : patch,
      denoiserChannels: width,
      guidanceBatch: guided ? 2 : 1,
    };
  }
  const blocks = numbers(unet?.block_out_channels);
  const channels = pyramid(blocks.length ? blocks : [320, 640, 1280, 1280]);
  const lcm = unet?.time_cond_proj_dim !== undefined && unet?.time_cond_proj_dim !== null;
  return {
    className,
    latentScale,
    vaeChannels,
    patch: 1,
    denoiserChannels: channels,
    guidanceBatch: lcm ? 1 : 2,
  };
}

/**
 * Bytes per element of the tensors below, fitted by bench/memory-calibration.js (see docs/server.md). VAE: the
 * decoder's full-resolution activations (width x pixels); denoiser: its token activations (width x tokens, guidance
 * doubling the batch). No attention-map term: OpenVINO's fused attention does not hold token x token maps (the
 * measured peaks grow linearly with the pixels). fixedBytes: a floor for small calls.
 */
export const MEMORY_COEFFICIENTS = { vae: 23, denoiser: 92, fixedBytes: 32 * 2 ** 20 };

/** Estimated bytes a call adds at its peak, on top of the loaded model. */
export function estimateCallBytes(
  profile: ModelMemoryProfile,
  plan: Pick<CallPlan, 'task' | 'width' | 'height' | 'numImagesPerPrompt'>,
): number {
  const c = MEMORY_COEFFICIENTS;
  const images = plan.numImagesPerPrompt;
  const pixels = plan.width * plan.height;
  const tokens = pixels / (profile.latentScale * profile.patch) ** 2;
  const vae = c.vae * profile.vaeChannels * pixels * images;
  const denoiser = c.denoiser * profile.denoiserChannels * tokens * images * profile.guidanceBatch;
  // The VAE (encoder for image-to-image, decoder at the end) and the denoiser run one after the other: their buffers
  // may both stay allocated, so both count.
  return Math.round(c.fixedBytes + vae + denoiser);
}

/** The memory this machine offers the server: its total memory, or a cgroup limit below it (a container's). */
export function machineMemoryBytes(): number {
  let limit = os.totalmem();
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const text = fs.readFileSync(file, 'utf8').trim();
      if (/^\d+$/.test(text)) limit = Math.min(limit, Number(text));
    } catch {
      // not in a cgroup with a limit
    }
  }
  return limit;
}

export interface MemoryAdmissionOptions {
  /** Bytes the process may use: the loaded models and the requests' peaks together. 0 = no admission control. */
  budgetBytes: number;
  /** The process's resident memory now (default: process.memoryUsage.rss()). */
  rss?: () => number;
}

interface Reservation {
  bytes: number;
}

/**
 * Admits a request only if the memory it adds at its peak fits: the resident memory measured when no request was
 * admitted (the loaded models), plus, per model, the peaks of the largest requests that can run at once (its
 * --max_concurrency; the others wait in its queue and take no memory yet), must stay within the budget.
 * A request that could not fit even alone is the client's to change (400); one that cannot fit now, a 503 to retry.
 */
export class MemoryAdmission {
  readonly budgetBytes: number;
  private readonly rss: () => number;
  private baseline: number;
  private readonly reserved = new Map<string, { concurrency: number; list: Reservation[] }>();

  constructor(options: MemoryAdmissionOptions) {
    this.budgetBytes = options.budgetBytes;
    this.rss = options.rss ?? (() => process.memoryUsage.rss());
    this.baseline = this.rss();
  }

  get enabled(): boolean {
    return this.budgetBytes > 0;
  }

  /** Resident memory when idle (models loaded, no request admitted). */
  get baselineBytes(): number {
    return this.baseline;
  }

  /** The peak the admitted requests may reach together, on top of the baseline. */
  get reservedBytes(): number {
    let sum = 0;
    for (const { concurrency, list } of this.reserved.values()) sum += topSum(list, concurrency);
    return sum;
  }

  private idle(): boolean {
    for (const { list } of this.reserved.values()) if (list.length) return false;
    return true;
  }

  /**
   * Reserves `bytes` for a request of `model` (which runs `concurrency` at once) or throws the answer: the refusal
   * error from `refuse(kind, detail)`. Returns the release, to call when the request ends.
   */
  admit(
    model: string,
    concurrency: number,
    bytes: number,
    refuse: (kind: 'never' | 'busy', detail: { needBytes: number; freeBytes: number; budgetBytes: number }) => Error,
  ): () => void {
    if (!this.enabled) return () => undefined;
    if (this.idle()) this.baseline = this.rss();
    const entry = this.reserved.get(model) ?? { concurrency, list: [] };
    const alone = this.baseline + bytes;
    if (alone > this.budgetBytes)
      throw refuse('never', { needBytes: bytes, freeBytes: Math.max(0, this.budgetBytes - this.baseline), budgetBytes: this.budgetBytes });
    const reservation = { bytes };
    const others = this.reservedBytes - topSum(entry.list, entry.concurrency);
    const mine = topSum([...entry.list, reservation], entry.concurrency);
    if (this.baseline + others + mine > this.budgetBytes)
      throw refuse('busy', {
        needBytes: bytes,
        freeBytes: Math.max(0, this.budgetBytes - this.baseline - this.reservedBytes),
        budgetBytes: this.budgetBytes,
      });
    entry.list.push(reservation);
    this.reserved.set(model, entry);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      entry.list.splice(entry.list.indexOf(reservation), 1);
    };
  }
}

function topSum(list: Reservation[], k: number): number {
  return [...list]
    .map((r) => r.bytes)
    .sort((a, b) => b - a)
    .slice(0, k)
    .reduce((a, b) => a + b, 0);
}

/** "12GB", "800MB", "1.5G", "123456" (bytes), "0" or "off": bytes (0 = no admission control). */
export function parseMemorySize(name: string, text: string): number {
  const t = text.trim().toLowerCase();
  if (t === 'off' || t === '0') return 0;
  const match = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?$/.exec(t);
  if (!match) throw new Error(`${name} must be a size such as 12GB, 800MB or 0 (off) (got '${text}')`);
  const unit = (match[2] ?? 'b')[0];
  const scale = { b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[unit as 'b' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(match[1]) * scale);
}
