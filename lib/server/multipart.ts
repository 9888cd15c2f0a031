// Multipart bodies of /images/edits as the official clients send them: parts in any order, chunked or not,
// `image` or repeated `image[]`, and file types told by their bytes, not by the declared Content-Type.
import type { EditFiles } from './generation';
import type { RequestHandler } from 'express';
import multer = require('multer');
import { countingStreamHandler } from './body';
import { ApiError, badField } from './errors';

export const UPLOAD_LIMITS = {
  /** Per file; the OpenAI API takes images under 50 MB. */
  fileSize: 50 * 1024 * 1024,
  files: 20,
  fields: 200,
  fieldSize: 1024 * 1024,
  parts: 250,
  /** Field names: bounded length, `a[b][c]` nesting and array indexes (multer builds req.body from them). */
  fieldNameSize: 200,
  fieldNestingDepth: 2,
  fieldArrayIndexLimit: 20,
};
/** The whole multipart body: an image and a mask at the file limit, and the text fields. */
export const MULTIPART_BODY_LIMIT = 2 * UPLOAD_LIMITS.fileSize + 4 * 1024 * 1024;

/**
 * Parses multipart/form-data into req.body (text fields) and req.files (in memory). Other content types pass through.
 * Run it through bodyStage (body.ts), which bounds its time and maps its errors.
 */
// multer 2.5's streamHandler is not in @types/multer yet.
const multerOptions: multer.Options & { streamHandler: ReturnType<typeof countingStreamHandler> } = {
  storage: multer.memoryStorage(),
  limits: UPLOAD_LIMITS,
  streamHandler: countingStreamHandler(MULTIPART_BODY_LIMIT),
};
export const parseMultipart: RequestHandler = multer(multerOptions).any();

const SIGNATURES: Array<[string, (b: Buffer) => boolean]> = [
  ['png', (b) => b.length >= 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a],
  ['jpeg', (b) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ['webp', (b) => b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP'],
  ['gif', (b) => b.length >= 6 && /^GIF8[79]a$/.test(b.toString('latin1', 0, 6))],
  ['tiff', (b) => b.length >= 4 && (b.readUInt32BE(0) === 0x49492a00 || b.readUInt32BE(0) === 0x4d4d002a)],
  ['avif', (b) => b.length >= 12 && b.toString('latin1', 4, 8) === 'ftyp' && /^avi[fs]$/.test(b.toString('latin1', 8, 12))],
];

/** The image format of the bytes, or undefined. */
export function sniffImage(bytes: Buffer): string | undefined {
  return SIGNATURES.find(([, test]) => test(bytes))?.[0];
}

/**
 * An uploaded part, as multer gives it (the fields read here). Declared here rather than as Express.Multer.File so the
 * published declarations do not need @types/multer (a dev dependency) in a consumer's project.
 */
export interface UploadedFile {
  fieldname: string;
  buffer: Buffer;
  mimetype: string;
}

function checkedImage(file: UploadedFile, param: string): Buffer {
  if (!file.buffer.length) throw badField(param, `${param} is an empty file`, 'invalid_image');
  if (!sniffImage(file.buffer))
    throw badField(
      param,
      `${param} is not a PNG, JPEG, WebP, GIF, TIFF or AVIF image (declared ${file.mimetype || 'no type'}; checked by content)`,
      'invalid_image_format',
    );
  return file.buffer;
}

/** Picks the image and the optional mask out of the uploaded parts. */
export function editFiles(files: UploadedFile[] | undefined, body: Record<string, unknown>): EditFiles {
  const all = files ?? [];
  const images = all.filter((f) => f.fieldname === 'image' || f.fieldname === 'image[]' || /^image\[\d+\]$/.test(f.fieldname));
  const masks = all.filter((f) => f.fieldname === 'mask');
  if (!images.length) {
    if (body.image !== undefined || body['image[]'] !== undefined)
      throw badField(
        'image',
        'image must be uploaded as a file part (e.g. curl -F "image=@photo.png"), not as a text field',
        'invalid_image',
      );
    throw badField('image', 'image is required: upload the picture to edit as a file part named image', 'missing_required_parameter');
  }
  if (images.length > 1)
    throw badField('image[1]', `${images.length} images were uploaded; these models edit one image per request`, 'too_many_images');
  if (masks.length > 1) throw badField('mask', 'mask is given more than once');
  if (!masks.length && body.mask !== undefined && body.mask !== '')
    throw badField('mask', 'mask must be uploaded as a file part (e.g. curl -F "mask=@mask.png"), not as a text field', 'invalid_image');
  return {
    image: checkedImage(images[0], images[0].fieldname === 'image' ? 'image' : 'image[0]'),
    mask: masks.length && masks[0].buffer.length ? checkedImage(masks[0], 'mask') : undefined,
  };
}

export function requireMultipart(contentType: string | undefined, route = 'images/edits'): void {
  if (!/^multipart\/form-data/i.test(contentType ?? ''))
    throw new ApiError(415, `${route} takes multipart/form-data (got ${contentType || 'no Content-Type'})`, null, 'unsupported_media_type');
}
