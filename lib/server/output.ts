// What goes back to the client besides the pixels: the encoded image (with the generation parameters in PNG
// outputs), the OpenAI `usage` object, and the fields shared by the JSON response and the stream events.
import type { GeneratedImage } from '../images';
import type { ImageRequest } from './fields';

/** The parameters that reproduce an image; written into PNG outputs. */
export interface ImageParameters {
  prompt: string;
  negativePrompt?: string;
  steps: number;
  scheduler: string;
  seed: number;
  guidanceScale?: number;
  strength?: number;
  width: number;
  height: number;
  model: string;
  adapters?: Array<{ name: string; alpha?: number }>;
  /** With n > 1: the batch size and this image's place in it (the seed drives the whole batch). */
  batch?: { size: number; index: number };
}

/**
 * The "parameters" text in the layout of the AUTOMATIC1111 web UI, which most image tools read:
 * the prompt, "Negative prompt: ...", then "Steps: 20, Sampler: ..., Seed: ..., Size: WxH, Model: ...".
 */
export function parametersText(p: ImageParameters): string {
  const settings: Array<[string, string | number | undefined]> = [
    ['Steps', p.steps],
    ['Sampler', p.scheduler],
    ['CFG scale', p.guidanceScale],
    ['Seed', p.seed],
    ['Size', `${p.width}x${p.height}`],
    ['Model', p.model],
    ['Denoising strength', p.strength],
    ['Lora', p.adapters?.length ? p.adapters.map((a) => `${a.name}:${a.alpha ?? 1}`).join(' ') : undefined],
    ['Batch size', p.batch?.size],
    ['Batch pos', p.batch?.index],
  ];
  const lines = [p.prompt];
  if (p.negativePrompt) lines.push(`Negative prompt: ${p.negativePrompt}`);
  lines.push(
    settings
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}: ${String(v).replace(/[,\n]/g, ' ')}`)
      .join(', '),
  );
  return lines.join('\n'); // the library writes it as tEXt, or as UTF-8 iTXt when it is not Latin-1
}

/** Encodes one result image in the requested format; PNGs get the parameters chunk unless metadata is off. */
export function encodeImage(image: GeneratedImage, request: ImageRequest, parameters?: ImageParameters): Promise<Buffer> {
  const pngText = request.outputFormat === 'png' && parameters ? { parameters: parametersText(parameters) } : undefined;
  const quality = request.outputFormat === 'png' ? undefined : request.outputCompression;
  return image.encode(request.outputFormat, { quality, pngText });
}

/**
 * Tokens, as a local analogue of the OpenAI image usage: text tokens are the prompts' pre-tokens (words and
 * punctuation, as CLIP's tokenizer splits before BPE: a lower bound of its count), image tokens are 16x16-pixel
 * patches (the latent 2x2 patches of the transformer models; 1024x1024 is 4096, close to OpenAI's 4160).
 */
export function textTokens(...texts: Array<string | undefined>): number {
  return texts.reduce((sum, text) => sum + (text ? (text.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu)?.length ?? 0) : 0), 0);
}

export function imageTokens(width: number, height: number): number {
  return Math.ceil(width / 16) * Math.ceil(height / 16);
}

export interface Usage {
  input_tokens: number;
  input_tokens_details: { text_tokens: number; image_tokens: number };
  output_tokens: number;
  total_tokens: number;
  output_tokens_details?: { image_tokens: number; text_tokens: number };
}

export function usage(request: ImageRequest, inputImageTokens: number, output: { width: number; height: number; count: number }): Usage {
  const o = request.options;
  const text = textTokens(request.prompt, o.prompt2, o.prompt3, o.negativePrompt, o.negativePrompt2, o.negativePrompt3);
  const out = output.count * imageTokens(output.width, output.height);
  return {
    input_tokens: text + inputImageTokens,
    input_tokens_details: { text_tokens: text, image_tokens: inputImageTokens },
    output_tokens: out,
    total_tokens: text + inputImageTokens + out,
  };
}
