// Images answered with response_format=url: written to a private temporary folder, served at
// GET /generated-images/<random id>.<ext> for a configurable time, then deleted (and all of them when the server stops).
import * as crypto from 'crypto';
import express = require('express');
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { OutputFormat } from '../images';
import { ApiError } from './errors';

export const IMAGE_ROUTE = '/generated-images';
const NAME = /^[0-9a-f-]{36}\.(png|jpeg|webp)$/;

/** Why an image could not be stored, and what to do: 507 in every case, since the request itself was fine. */
function storageError(code: string | undefined, error: Error): ApiError {
  const full = code === 'ENOSPC' || code === 'EDQUOT';
  const unwritable = ['EROFS', 'EACCES', 'EPERM', 'ENOTDIR'].includes(code ?? '');
  const why = full
    ? ': the disk is full'
    : unwritable
      ? `: the temporary folder ${os.tmpdir()} is not writable (mount a writable /tmp, e.g. --tmpfs /tmp, or set TMPDIR)`
      : '';
  return new ApiError(
    507,
    `cannot store the image for response_format=url (${code ?? error.message}${why}); ask for response_format b64_json`,
    'response_format',
    full ? 'storage_full' : 'storage_unavailable',
  );
}

export class ImageStore {
  private dir?: string;
  private making?: Promise<string>;
  private readonly expiry = new Map<string, number>();
  private timer?: NodeJS.Timeout;

  /** ttlMs 0 turns response_format=url off. */
  constructor(readonly ttlMs: number) {}

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  private folder(): Promise<string> {
    this.making ??= fs.promises.mkdtemp(path.join(os.tmpdir(), 'ov-diffusion-images-')).then((dir) => {
      this.dir = dir;
      if (!this.timer) {
        this.timer = setInterval(() => this.sweep(), Math.min(60000, Math.max(1000, this.ttlMs)));
        this.timer.unref();
      }
      return dir;
    });
    return this.making;
  }

  /**
   * Stores the bytes; returns the file name under IMAGE_ROUTE. A failed write leaves no partial file; a folder that
   * was deleted under the server (a tmp cleaner) is made again; a full disk or a temporary folder the server cannot
   * write (a read-only root filesystem without a writable /tmp) is a 507 naming the way out.
   */
  async put(bytes: Buffer, format: OutputFormat): Promise<string> {
    const name = `${crypto.randomUUID()}.${format}`;
    for (let attempt = 0; ; attempt++) {
      const making = this.folder();
      let file: string | undefined;
      try {
        file = path.join(await making, name);
        await fs.promises.writeFile(file, bytes);
        break;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (file) await fs.promises.rm(file, { force: true }).catch(() => undefined);
        // The folder was never made, or was deleted under the server (a tmp cleaner): make it again (now, once).
        if (this.making === making && (!file || code === 'ENOENT')) this.making = undefined;
        if (code === 'ENOENT' && file && attempt === 0) continue;
        throw storageError(code, error as Error);
      }
    }
    this.expiry.set(name, Date.now() + this.ttlMs);
    return name;
  }

  /** Deletes the expired images. */
  sweep(now = Date.now()): void {
    for (const [name, expires] of this.expiry) {
      if (expires > now) continue;
      this.expiry.delete(name);
      fs.rm(path.join(this.dir!, name), { force: true }, () => undefined);
    }
  }

  get size(): number {
    return this.expiry.size;
  }

  router(): express.Router {
    const router = express.Router();
    router.get(`${IMAGE_ROUTE}/:name`, (req, res, next) => {
      res.locals.route = `${IMAGE_ROUTE}/{name}`;
      const name = String(req.params.name);
      const expires = this.expiry.get(name);
      if (!NAME.test(name) || expires === undefined || expires <= Date.now() || !this.dir)
        return next(
          new ApiError(
            404,
            `no image ${name}: the images of response_format=url are kept ${Math.round(this.ttlMs / 1000)} s`,
            null,
            'image_not_found',
          ),
        );
      res.sendFile(
        path.join(this.dir, name),
        {
          headers: { 'cache-control': `private, max-age=${Math.max(0, Math.floor((expires - Date.now()) / 1000))}` },
        },
        (error) => {
          if (error && !res.headersSent) next(error);
        },
      );
    });
    return router;
  }

  /** Deletes every stored image and the folder. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.expiry.clear();
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
    this.making = undefined;
  }
}
