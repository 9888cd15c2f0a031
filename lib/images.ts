// Image input and output: decoding what users pass in and encoding what the engine returns, with sharp.
import sharp = require('sharp');
import * as zlib from 'zlib';
import { OvDiffusionError } from './errors';

/** Raw 8-bit pixels, row-major, interleaved channels. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

/** An encoded image (PNG, JPEG, WebP, ...) or raw pixels. */
export type ImageInput = Buffer | Uint8Array | RawImage;

export type OutputFormat = 'png' | 'jpeg' | 'webp';

export interface EncodeOptions {
  /** JPEG/WebP quality 0-100 (default 90); for PNG, 0-100 maps onto zlib level 9-0 (default level 6). */
  quality?: number;
  /** PNG tEXt chunks, e.g. { parameters: '...' }. */
  pngText?: Record<string, string>;
}

/** Default limit on decoded input size, against decompression bombs (about 64 MP). */
export const DEFAULT_MAX_INPUT_PIXELS = 8192 * 8192;

function isRaw(input: ImageInput): input is RawImage {
  return !(input instanceof Uint8Array) && typeof input === 'object' && input !== null && 'width' in input;
}

/** One generated RGB image with encoders. */
export class GeneratedImage implements RawImage {
  readonly channels = 3 as const;
  constructor(
    readonly data: Buffer,
    readonly width: number,
    readonly height: number,
  ) {}

  /** Encodes off the JS thread (sharp runs on the libuv pool). */
  async encode(format: OutputFormat = 'png', options: EncodeOptions = {}): Promise<Buffer> {
    let pipeline = sharp(this.data, { raw: { width: this.width, height: this.height, channels: 3 } });
    if (format === 'png') {
      const level = options.quality === undefined ? 6 : Math.round(9 - (clampQuality(options.quality) * 9) / 100);
      const png = await pipeline.png({ compressionLevel: level }).toBuffer();
      return options.pngText ? insertPngText(png, options.pngText) : png;
    } else if (format === 'jpeg') {
      pipeline = pipeline.jpeg({ quality: clampQuality(options.quality ?? 90) });
    } else if (format === 'webp') {
      pipeline = pipeline.webp({ quality: clampQuality(options.quality ?? 90) });
    } else {
      throw new OvDiffusionError('ERR_INVALID_ARGUMENT', `unknown output format '${String(format)}' (png, jpeg or webp)`);
    }
    return pipeline.toBuffer();
  }

  toPng(options?: EncodeOptions): Promise<Buffer> {
    return this.encode('png', options);
  }
  toJpeg(options?: EncodeOptions): Promise<Buffer> {
    return this.encode('jpeg', options);
  }
  toWebp(options?: EncodeOptions): Promise<Buffer> {
    return this.encode('webp', options);
  }
}

/**
 * Adds text chunks right after IHDR (sharp writes none): tEXt when the text is Latin-1, else iTXt
 * (UTF-8), so prompts in any script survive. Keywords are Latin-1, 1-79 characters.
 */
export function insertPngText(png: Buffer, entries: Record<string, string>): Buffer {
  const IHDR_END = 8 + 4 + 4 + 13 + 4; // signature, length, type, IHDR data, CRC
  const chunks = Object.entries(entries).map(([keyword, text]) => {
    if (!/^[\x20-\x7e]{1,79}$/.test(keyword)) throw new OvDiffusionError('ERR_INVALID_ARGUMENT', `bad PNG text keyword '${keyword}'`);
    const latin1 = Array.from(text).every((c) => c.charCodeAt(0) <= 0xff);
    // iTXt: keyword, 0, compression flag 0, method 0, empty language tag, 0, empty translated keyword, 0, UTF-8 text.
    const body = latin1
      ? Buffer.concat([Buffer.from('tEXt', 'latin1'), Buffer.from(keyword, 'latin1'), Buffer.from([0]), Buffer.from(text, 'latin1')])
      : Buffer.concat([
          Buffer.from('iTXt', 'latin1'),
          Buffer.from(keyword, 'latin1'),
          Buffer.from([0, 0, 0, 0, 0]),
          Buffer.from(text, 'utf8'),
        ]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(body.length - 4);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body) >>> 0);
    return Buffer.concat([length, body, crc]);
  });
  return Buffer.concat([png.subarray(0, IHDR_END), ...chunks, png.subarray(IHDR_END)]);
}

function clampQuality(q: number): number {
  if (!Number.isFinite(q) || q < 0 || q > 100) throw new OvDiffusionError('ERR_INVALID_ARGUMENT', 'quality must be between 0 and 100');
  return Math.round(q);
}

/** Splits the engine's [N,H,W,3] buffer into images. */
export function splitImages(data: Buffer, count: number, width: number, height: number): GeneratedImage[] {
  const size = width * height * 3;
  return Array.from({ length: count }, (_, i) => new GeneratedImage(Buffer.from(data.subarray(i * size, (i + 1) * size)), width, height));
}

interface DecodeOptions {
  what: string;
  maxPixels?: number;
}

async function decodeToRgb(input: ImageInput, { what, maxPixels = DEFAULT_MAX_INPUT_PIXELS }: DecodeOptions): Promise<RawImage> {
  let image: sharp.Sharp;
  if (isRaw(input)) {
    const { width, height, channels: c, data } = input;
    if (![1, 3, 4].includes(c) || !Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0)
      throw new OvDiffusionError('ERR_INVALID_ARGUMENT', `${what}: raw images need positive integer width/height and 1, 3 or 4 channels`, {
        param: what,
      });
    if (data.byteLength !== width * height * c)
      throw new OvDiffusionError(
        'ERR_INVALID_ARGUMENT',
        `${what}: raw data has ${data.byteLength} bytes, ${width}x${height}x${c} needs ${width * height * c}`,
      );
    if (width * height > maxPixels)
      throw new OvDiffusionError('ERR_INVALID_ARGUMENT', `${what}: ${width}x${height} exceeds the limit of ${maxPixels} pixels`, {
        param: what,
      });
    image = sharp(data, { raw: { width, height, channels: c } });
  } else if (input instanceof Uint8Array) {
    image = sharp(input, { limitInputPixels: maxPixels, failOn: 'error' });
  } else {
    throw new OvDiffusionError(
      'ERR_INVALID_ARGUMENT',
      `${what} must be a Buffer with an encoded image or a raw image {data, width, height, channels}`,
    );
  }
  try {
    // Alpha is dropped, not composited: the colour channels are what the engine reads.
    const { data, info } = await image.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { data, width: info.width, height: info.height, channels: 3 };
  } catch (error) {
    const message = (error as Error).message;
    if (/pixel limit/i.test(message))
      throw new OvDiffusionError('ERR_INVALID_ARGUMENT', `${what}: image exceeds the limit of ${maxPixels} pixels`, {
        cause: error,
        param: what,
      });
    throw new OvDiffusionError('ERR_INVALID_ARGUMENT', `${what}: cannot decode the image (${message})`, { cause: error, param: what });
  }
}

/**
 * Decodes an image or a mask to RGB; grayscale becomes three equal channels and alpha is dropped.
 * The engine binarizes masks as gray = 0.299 R + 0.587 G + 0.114 B >= 127.5 (white repaints).
 */
export function decodeImage(input: ImageInput, options: DecodeOptions): Promise<RawImage> {
  return decodeToRgb(input, options);
}
