// The model families the engine runs, named from a model folder's pipeline class (model_index.json `_class_name`).

export type ModelFamily =
  'Stable Diffusion' | 'Stable Diffusion XL' | 'LCM' | 'Stable Diffusion 3' | 'FLUX.1' | 'FLUX.2 klein' | 'Z-Image' | 'Qwen-Image';

/** The class-name prefixes of each family, the first match wins (the only place they are listed in the library). */
const FAMILY_PREFIXES: ReadonlyArray<{ family: ModelFamily; prefixes: readonly string[] }> = [
  { family: 'Stable Diffusion XL', prefixes: ['StableDiffusionXL'] },
  { family: 'Stable Diffusion 3', prefixes: ['StableDiffusion3'] },
  { family: 'Stable Diffusion', prefixes: ['StableDiffusion'] },
  { family: 'LCM', prefixes: ['LatentConsistencyModel'] },
  { family: 'FLUX.2 klein', prefixes: ['Flux2Klein'] },
  { family: 'FLUX.1', prefixes: ['Flux'] },
  { family: 'Z-Image', prefixes: ['ZImage'] },
  { family: 'Qwen-Image', prefixes: ['QwenImage'] },
];

/** The family of a pipeline class, or undefined for a class the engine does not run. */
export function modelFamily(className: string): ModelFamily | undefined {
  return FAMILY_PREFIXES.find((row) => row.prefixes.some((prefix) => className.startsWith(prefix)))?.family;
}
