import * as path from 'path';
import { binding, PACKAGE_ROOT } from './binding';

export { OvDiffusionError, ErrorCode } from './errors';
export { IrModel, Tensor, Port } from './ir-model';
export {
  DiffusionModel,
  LoadOptions,
  GenerateOptions,
  CallPlan,
  GenerationResult,
  GenerationMetrics,
  StepProgress,
  Task,
  SchedulerName,
  DeviceSpec,
  AdapterSelection,
  AdapterReport,
  StaticShapeOptions,
  PreviewMode,
} from './diffusion-model';
export {
  AdapterChoice,
  TaylorSeerOptions,
  GenerationParameters,
  GENERATION_PARAMETERS,
  SCHEDULER_NAMES,
  PREVIEW_MODES,
} from './parameters';
export { Text2ImagePipeline, Image2ImagePipeline, InpaintingPipeline } from './pipelines';
export { ModelFamily, modelFamily } from './families';
export { GenerationJob, JobEvents, JobOptions, JobStatus } from './job';
export { GeneratedImage, ImageInput, RawImage, OutputFormat, EncodeOptions, DEFAULT_MAX_INPUT_PIXELS } from './images';

/** The OpenVINO Runtime build this addon runs on, e.g. "2026.4.1-22982-...". */
export function openvinoVersion(): string {
  return binding().openvinoVersion();
}

/** OpenVINO devices available on this machine, e.g. ["CPU"]. */
export function availableDevices(): string[] {
  return binding().availableDevices();
}

/**
 * The glibc allocator setting applied before the first model loads: a fixed mmap threshold (default 4 MiB), so that
 * OpenVINO's large activation buffers go back to the OS when freed instead of staying in the heap (lower peak memory,
 * same speed; see docs/benchmarks.md). Set OV_DIFFUSION_MALLOC_MMAP_THRESHOLD to a size in bytes, or to 0/off to
 * keep glibc's dynamic default, before the first load. `applied` is false (with a `reason`) when opted out or not on glibc.
 */
export function allocatorTuning(): { applied: boolean; mmapThreshold: number; reason: string } {
  return binding().allocatorTuning();
}

/**
 * The demo model shipped with the package (models/demo/, in the Stable Diffusion 1.x layout, trained here by
 * scripts/demo-model/make-demo-model.sh; its model card is models/demo/README.md): coloured shapes on plain
 * backgrounds at 128x128, e.g. "a big red circle on a white background". What `npm start` serves without model flags.
 */
export const DEMO_MODEL_DIR = path.join(PACKAGE_ROOT, 'models', 'demo');
/** Its dedicated inpainting variant (StableDiffusionInpaintPipeline layout, fine-tuned from the demo model). */
export const DEMO_INPAINT_MODEL_DIR = path.join(PACKAGE_ROOT, 'models', 'demo-inpaint');
/** Its style LoRA (kohya .safetensors): shapes drawn as outlines when the prompt holds the trigger word "outlined". */
export const DEMO_LORA_FILES: Readonly<Record<string, string>> = Object.freeze({
  outlined: path.join(PACKAGE_ROOT, 'models', 'loras', 'outlined.safetensors'),
});
