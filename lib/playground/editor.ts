// The input image of image-to-image and inpainting, and the inpainting mask painted over it. The image lives in one
// canvas at its own pixel size, the mask in a second canvas of the same size laid over it (painted red, shown half
// transparent). Sent to the server, the mask is white where painted (repaint) and black elsewhere (keep), as
// /images/edits takes it. Outpainting extends the canvas: the image keeps its pixels, the new border is grey and
// masked.

/** Uploads are scaled down to this longest side (and every size to a multiple of 8, as the models need). */
export const MAX_INPUT_SIDE = 768;
const MASK_COLOR = '#ff2020';
const BORDER_FILL = '#808080';

const multipleOf8 = (n: number) => Math.max(8, Math.floor(n / 8) * 8);

export class ImageEditor {
  readonly image: HTMLCanvasElement;
  readonly mask: HTMLCanvasElement;
  tool: 'brush' | 'eraser' = 'brush';
  brushSize = 24;
  /** Whether painting is on (inpainting); off, the pointer does nothing. */
  painting = false;
  private drawing = false;
  private last?: { x: number; y: number };
  private loaded = false;
  onChange?: () => void;

  constructor(image: HTMLCanvasElement, mask: HTMLCanvasElement) {
    this.image = image;
    this.mask = mask;
    mask.addEventListener('pointerdown', (e) => this.down(e));
    mask.addEventListener('pointermove', (e) => this.move(e));
    for (const type of ['pointerup', 'pointercancel', 'pointerleave'] as const) mask.addEventListener(type, () => this.up());
  }

  get hasImage(): boolean {
    return this.loaded;
  }

  get size(): string {
    return `${this.image.width}x${this.image.height}`;
  }

  /** Draws `source` as the input (scaled down to MAX_INPUT_SIDE, cropped to multiples of 8) and clears the mask. */
  load(source: CanvasImageSource & { width: number; height: number }): void {
    const scale = Math.min(1, MAX_INPUT_SIDE / Math.max(source.width, source.height));
    const width = multipleOf8(source.width * scale);
    const height = multipleOf8(source.height * scale);
    this.resize(width, height);
    this.image.getContext('2d')!.drawImage(source, 0, 0, source.width * scale, source.height * scale);
    this.loaded = true;
    this.onChange?.();
  }

  async loadBlob(blob: Blob): Promise<void> {
    const bitmap = await createImageBitmap(blob);
    this.load(bitmap);
    bitmap.close();
  }

  private resize(width: number, height: number): void {
    for (const canvas of [this.image, this.mask]) {
      canvas.width = width;
      canvas.height = height;
    }
  }

  /** Outpainting: adds a grey, masked border of the given widths in pixels (multiples of 8). */
  extend(sides: { top: number; right: number; bottom: number; left: number }): void {
    if (!this.loaded) return;
    const { top, right, bottom, left } = sides;
    const copy = (canvas: HTMLCanvasElement) => {
      const c = document.createElement('canvas');
      c.width = canvas.width;
      c.height = canvas.height;
      c.getContext('2d')!.drawImage(canvas, 0, 0);
      return c;
    };
    const image = copy(this.image);
    const mask = copy(this.mask);
    this.resize(image.width + left + right, image.height + top + bottom);
    const ctx = this.image.getContext('2d')!;
    ctx.fillStyle = BORDER_FILL;
    ctx.fillRect(0, 0, this.image.width, this.image.height);
    ctx.drawImage(image, left, top);
    const m = this.mask.getContext('2d')!;
    m.fillStyle = MASK_COLOR;
    m.fillRect(0, 0, this.mask.width, this.mask.height);
    m.clearRect(left, top, image.width, image.height);
    m.drawImage(mask, left, top);
    this.onChange?.();
  }

  clearMask(): void {
    this.mask.getContext('2d')!.clearRect(0, 0, this.mask.width, this.mask.height);
    this.onChange?.();
  }

  fillMask(): void {
    const ctx = this.mask.getContext('2d')!;
    ctx.fillStyle = MASK_COLOR;
    ctx.fillRect(0, 0, this.mask.width, this.mask.height);
    this.onChange?.();
  }

  invertMask(): void {
    const ctx = this.mask.getContext('2d')!;
    const pixels = ctx.getImageData(0, 0, this.mask.width, this.mask.height);
    const d = pixels.data;
    for (let i = 0; i < d.length; i += 4) {
      const painted = d[i + 3] > 0;
      d[i] = 255;
      d[i + 1] = 32;
      d[i + 2] = 32;
      d[i + 3] = painted ? 0 : 255;
    }
    ctx.putImageData(pixels, 0, 0);
    this.onChange?.();
  }

  /** The share of mask pixels painted, 0..1. */
  maskCoverage(): number {
    if (!this.loaded) return 0;
    const d = this.mask.getContext('2d')!.getImageData(0, 0, this.mask.width, this.mask.height).data;
    let painted = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) painted++;
    return painted / (d.length / 4);
  }

  imageBlob(): Promise<Blob> {
    return toPng(this.image);
  }

  /** The mask as the API takes it: white = repaint, black = keep. */
  maskBlob(): Promise<Blob> {
    const out = document.createElement('canvas');
    out.width = this.mask.width;
    out.height = this.mask.height;
    const ctx = out.getContext('2d')!;
    const source = this.mask.getContext('2d')!.getImageData(0, 0, out.width, out.height).data;
    const pixels = ctx.createImageData(out.width, out.height);
    for (let i = 0; i < source.length; i += 4) {
      const value = source[i + 3] > 0 ? 255 : 0;
      pixels.data[i] = pixels.data[i + 1] = pixels.data[i + 2] = value;
      pixels.data[i + 3] = 255;
    }
    ctx.putImageData(pixels, 0, 0);
    return toPng(out);
  }

  /** Pointer position in mask pixels (the canvas is shown scaled to the page). */
  private point(e: PointerEvent): { x: number; y: number } {
    const rect = this.mask.getBoundingClientRect();
    return { x: ((e.clientX - rect.left) * this.mask.width) / rect.width, y: ((e.clientY - rect.top) * this.mask.height) / rect.height };
  }

  private down(e: PointerEvent): void {
    if (!this.painting || !this.loaded) return;
    e.preventDefault();
    this.mask.setPointerCapture?.(e.pointerId);
    this.drawing = true;
    this.last = this.point(e);
    this.stroke(this.last, this.last);
  }

  private move(e: PointerEvent): void {
    if (!this.drawing) return;
    const p = this.point(e);
    this.stroke(this.last!, p);
    this.last = p;
  }

  private up(): void {
    if (!this.drawing) return;
    this.drawing = false;
    this.onChange?.();
  }

  private stroke(from: { x: number; y: number }, to: { x: number; y: number }): void {
    const ctx = this.mask.getContext('2d')!;
    ctx.globalCompositeOperation = this.tool === 'eraser' ? 'destination-out' : 'source-over';
    ctx.strokeStyle = MASK_COLOR;
    ctx.lineWidth = this.brushSize;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x + 0.01, to.y);
    ctx.stroke();
    ctx.globalCompositeOperation = 'source-over';
  }
}

function toPng(canvas: HTMLCanvasElement): Promise<Blob> {
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('the canvas could not be encoded'))), 'image/png'),
  );
}
