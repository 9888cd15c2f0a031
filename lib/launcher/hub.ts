// Pulling models and LoRA files from the Hugging Face hub (or any server with its URL layout, via HF_ENDPOINT).
// Files are listed with @huggingface/hub, downloaded with HTTP Range resume, checked against the hub's size and
// sha256 (LFS) or git blob sha1, and placed atomically: a model is downloaded into a hidden sibling folder and renamed
// into place when complete, so a half-downloaded model is never served. An interrupted pull resumes where it stopped.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { listFiles } from '@huggingface/hub';
import type { Logger } from '../server/log';
import type { LoraAdapterSpec } from './lora-sources';
import { loraFilePath } from './lora-sources';
import { Progress, createProgress, formatBytes } from './progress';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubOptions {
  /** Default: env HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Default: env HF_TOKEN. */
  token?: string;
  revision?: string;
  logger: Logger;
  /** Attempts per file when the connection drops (each resumes where the last stopped). */
  attempts?: number;
  retryDelayMs?: number;
  progressStream?: NodeJS.WriteStream;
}

export class PullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PullError';
  }
}

interface RemoteFile {
  path: string;
  size: number;
  sha256?: string;
  gitSha1?: string;
}

export function hubEndpoint(options: Pick<HubOptions, 'endpoint'> = {}): string {
  return (options.endpoint ?? process.env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

function hubToken(options: Pick<HubOptions, 'token'>): string | undefined {
  return options.token ?? (process.env.HF_TOKEN || undefined);
}

function authFetch(token: string | undefined): typeof fetch {
  return (input, init) => {
    const headers = new Headers(init?.headers);
    if (token) headers.set('Authorization', `Bearer ${token}`);
    return fetch(input, { ...init, headers });
  };
}

const encodePath = (file: string) => file.split('/').map(encodeURIComponent).join('/');

export function resolveUrl(endpoint: string, repo: string, revision: string, file: string): string {
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${encodePath(file)}`;
}

/** The files of a repository at a revision, with their sizes and checksums. */
export async function listRepoFiles(repo: string, options: HubOptions): Promise<RemoteFile[]> {
  const files: RemoteFile[] = [];
  try {
    for await (const entry of listFiles({
      repo: { type: 'model', name: repo },
      recursive: true,
      revision: options.revision ?? 'main',
      hubUrl: hubEndpoint(options),
      fetch: authFetch(hubToken(options)),
    })) {
      if (entry.type !== 'file') continue;
      files.push({
        path: entry.path,
        size: entry.lfs?.size ?? entry.size,
        sha256: entry.lfs?.oid,
        gitSha1: entry.lfs ? undefined : entry.oid,
      });
    }
  } catch (error) {
    const status = (error as { statusCode?: number }).statusCode;
    const hint =
      status === 401 || status === 403
        ? ' (a gated or private repository: set HF_TOKEN to a token with access)'
        : status === 404
          ? ' (check the repository name, and HF_ENDPOINT if you use a mirror)'
          : '';
    throw new PullError(`cannot list ${repo} on ${hubEndpoint(options)}: ${(error as Error).message}${hint}`);
  }
  return files;
}

/** An optimum-intel export: model_index.json and OpenVINO IR submodels. */
export function isOpenVinoLayout(files: Array<{ path: string }>): boolean {
  const names = new Set(files.map((f) => f.path));
  return names.has('model_index.json') && files.some((f) => /^[^/]+\/openvino_model\.xml$/.test(f.path));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function hashExisting(file: string, hashes: crypto.Hash[]): Promise<void> {
  for await (const chunk of fs.createReadStream(file)) for (const hash of hashes) hash.update(chunk as Buffer);
}

function describeStatus(status: number, url: string): string {
  if (status === 401 || status === 403) return `access denied (HTTP ${status}) for ${url}: set HF_TOKEN to a token with access`;
  if (status === 404) return `not found (HTTP 404): ${url}`;
  return `HTTP ${status} for ${url}`;
}

/**
 * Downloads url into dest through dest.part, resuming from the bytes already there (HTTP Range), retrying dropped
 * connections, and verifying size and checksums before the rename.
 */
export async function downloadFile(
  url: string,
  dest: string,
  expected: Partial<RemoteFile>,
  fetcher: typeof fetch,
  progress: Progress | undefined,
  options: Pick<HubOptions, 'attempts' | 'retryDelayMs' | 'logger'>,
): Promise<number> {
  const part = `${dest}.part`;
  await fs.promises.mkdir(path.dirname(dest), { recursive: true });
  const attempts = options.attempts ?? 5;
  let reported = 0;
  const report = (upTo: number) => {
    if (upTo > reported) progress?.advance(upTo - reported);
    reported = Math.max(reported, upTo);
  };
  for (let attempt = 1; ; attempt++) {
    let offset = fs.existsSync(part) ? (await fs.promises.stat(part)).size : 0;
    if (expected.size !== undefined && offset > expected.size) {
      await fs.promises.rm(part);
      offset = 0;
    }
    const sha256 = crypto.createHash('sha256');
    const sha1 = crypto.createHash('sha1');
    if (expected.gitSha1 && expected.size !== undefined) sha1.update(`blob ${expected.size}\0`);
    try {
      let response: Response | undefined;
      if (!(expected.size !== undefined && offset === expected.size)) {
        response = await fetcher(url, { headers: offset ? { Range: `bytes=${offset}-` } : {}, redirect: 'follow' });
        if (response.status === 416) {
          await response.body?.cancel();
          await fs.promises.rm(part, { force: true });
          continue;
        }
        if (response.status !== 200 && response.status !== 206) {
          await response.body?.cancel();
          throw new PullError(describeStatus(response.status, url));
        }
        if (response.status === 200 && offset) {
          options.logger.debug(`${url}: the server ignored the Range request; downloading from the start`);
          offset = 0;
        }
      }
      if (offset) {
        await hashExisting(part, [sha256, sha1]);
        report(offset);
        options.logger.info(`resuming ${path.basename(dest)} at ${formatBytes(offset)}`);
      }
      if (response?.body) {
        const out = fs.createWriteStream(part, { flags: offset ? 'a' : 'w' });
        try {
          for await (const chunk of response.body) {
            const bytes = chunk as Uint8Array;
            sha256.update(bytes);
            sha1.update(bytes);
            offset += bytes.length;
            report(offset);
            if (!out.write(bytes)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
          }
        } finally {
          await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
        }
      }
      if (expected.size !== undefined && offset !== expected.size) {
        if (offset < expected.size) throw new Error(`connection closed at ${formatBytes(offset)} of ${formatBytes(expected.size)}`);
        await fs.promises.rm(part);
        throw new PullError(`${url}: got ${offset} bytes, the hub lists ${expected.size}`);
      }
      const digest256 = sha256.digest('hex');
      const digest1 = sha1.digest('hex');
      if (
        (expected.sha256 && digest256 !== expected.sha256) ||
        (expected.gitSha1 && expected.size !== undefined && digest1 !== expected.gitSha1)
      ) {
        await fs.promises.rm(part);
        throw new PullError(
          `${url}: checksum mismatch (sha256 ${digest256}, expected ${expected.sha256 ?? `git ${expected.gitSha1}`}); the partial file was deleted, run again`,
        );
      }
      await fs.promises.rename(part, dest);
      return offset;
    } catch (error) {
      if (error instanceof PullError || attempt >= attempts) {
        if (error instanceof PullError) throw error;
        throw new PullError(`download of ${url} failed after ${attempt} attempts: ${(error as Error).message}; run again to resume`);
      }
      options.logger.warn(
        `download of ${path.basename(dest)} interrupted (${(error as Error).message}); resuming, attempt ${attempt + 1}/${attempts}`,
      );
      await sleep((options.retryDelayMs ?? 1000) * attempt);
    }
  }
}

/** The hidden folder a model downloads into before it is renamed to its place. */
export function partialDir(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.partial`);
}

async function placeAtomically(staging: string, target: string): Promise<void> {
  if (fs.existsSync(target)) {
    const old = `${staging}.old`;
    await fs.promises.rm(old, { recursive: true, force: true });
    await fs.promises.rename(target, old);
    await fs.promises.rename(staging, target);
    await fs.promises.rm(old, { recursive: true, force: true });
  } else {
    await fs.promises.rename(staging, target);
  }
}

export interface PullModelOptions extends HubOptions {
  repo: string;
  target: string;
  overwrite?: boolean;
  /** For non-OpenVINO sources (or whenever set): convert with optimum-cli. */
  weightFormat?: string;
  extraQuantizationParams?: string;
}

/** Makes target hold the OpenVINO model of repo: skipped when present, else downloaded or converted. */
export async function pullModel(options: PullModelOptions): Promise<'present' | 'downloaded' | 'converted'> {
  const { repo, target, logger } = options;
  if (fs.existsSync(target) && !options.overwrite) {
    logger.info(`${repo}: already in ${target}, not downloading (--overwrite_models downloads it again)`);
    return 'present';
  }
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  if (options.weightFormat !== undefined || options.extraQuantizationParams !== undefined) {
    await convertWithOptimum(options);
    return 'converted';
  }
  const endpoint = hubEndpoint(options);
  const files = await listRepoFiles(repo, options);
  if (!files.length) throw new PullError(`${repo} on ${endpoint} has no files`);
  if (!isOpenVinoLayout(files)) {
    logger.info(`${repo} is not in OpenVINO format (no model_index.json with */openvino_model.xml): converting it with optimum-cli`);
    await convertWithOptimum(options);
    return 'converted';
  }
  const staging = partialDir(target);
  if (options.overwrite) await fs.promises.rm(staging, { recursive: true, force: true });
  else if (fs.existsSync(staging)) logger.info(`${repo}: resuming the interrupted download in ${staging}`);
  await fs.promises.mkdir(staging, { recursive: true });

  const missing = files.filter((f) => !isComplete(path.join(staging, f.path), f.size));
  const progress = createProgress(logger, `pulling ${repo}`, options.progressStream);
  progress.start(
    missing.reduce((sum, f) => sum + f.size, 0),
    missing.length,
  );
  const fetcher = authFetch(hubToken(options));
  for (const file of missing) {
    const dest = path.join(staging, file.path);
    if (!dest.startsWith(staging + path.sep)) throw new PullError(`refusing the file path '${file.path}' from the hub`);
    const bytes = await downloadFile(
      resolveUrl(endpoint, repo, options.revision ?? 'main', file.path),
      dest,
      file,
      fetcher,
      progress,
      options,
    );
    progress.fileDone(file.path, bytes);
  }
  progress.finish();
  await placeAtomically(staging, target);
  logger.info(`${repo}: downloaded to ${target}`);
  return 'downloaded';
}

function isComplete(file: string, size: number): boolean {
  try {
    return fs.statSync(file).size === size;
  } catch {
    return false;
  }
}

// ---- optimum-cli conversion ----

export function findOnPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function optimumCommand(
  options: Pick<PullModelOptions, 'repo' | 'weightFormat' | 'extraQuantizationParams'>,
  outDir: string,
): string[] {
  const extra = options.extraQuantizationParams?.trim() ? options.extraQuantizationParams.trim().split(/\s+/) : [];
  return ['export', 'openvino', '--model', options.repo, '--weight-format', options.weightFormat ?? 'int8', ...extra, outDir];
}

async function convertWithOptimum(options: PullModelOptions): Promise<void> {
  const { repo, target, logger } = options;
  const optimum = findOnPath('optimum-cli');
  const args = optimumCommand(options, target);
  if (!optimum) {
    throw new PullError(
      `${repo} is not in OpenVINO format and optimum-cli is not installed, so it cannot be converted here. Either ` +
        `install it (pip install "optimum-intel[openvino]") and run again, or convert it yourself: optimum-cli ${args.join(' ')} ` +
        'and serve that folder with --model_path and --model_name. Repositories under OpenVINO/ on the hub are already converted.',
    );
  }
  const staging = partialDir(target);
  await fs.promises.rm(staging, { recursive: true, force: true });
  const stagedArgs = optimumCommand(options, staging);
  logger.info(`converting ${repo}: ${optimum} ${stagedArgs.join(' ')}`);
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(optimum, stagedArgs, { stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
    child.on('error', reject);
    child.on('exit', resolve);
  });
  if (code !== 0 || !fs.existsSync(path.join(staging, 'model_index.json'))) {
    await fs.promises.rm(staging, { recursive: true, force: true });
    throw new PullError(`optimum-cli export of ${repo} failed${code !== 0 ? ` (exit code ${code})` : ' (no model_index.json written)'}`);
  }
  await placeAtomically(staging, target);
  logger.info(`${repo}: converted to ${target}`);
}

// ---- LoRA files ----

/**
 * Makes every remote adapter's file present under modelDir/loras (skipped when there, unless overwrite). An HF
 * repository given without @file must hold exactly one .safetensors file. Returns the adapters with their files named.
 */
export async function pullLoras(specs: LoraAdapterSpec[], modelDir: string, options: HubOptions & { overwrite?: boolean }): Promise<void> {
  const endpoint = hubEndpoint(options);
  const token = hubToken(options);
  for (const spec of specs) {
    const { source } = spec;
    if (source.type === 'local') continue;
    let expected: Partial<RemoteFile> = {};
    let url: string;
    if (source.type === 'hf') {
      const needsListing = !source.file || !fs.existsSync(loraFilePath(spec, modelDir)!) || options.overwrite;
      const files = needsListing ? await listRepoFiles(source.repo, options) : [];
      if (!source.file) {
        const candidates = files.filter((f) => f.path.toLowerCase().endsWith('.safetensors'));
        if (!candidates.length) throw new PullError(`No .safetensors files found in ${source.repo} (LoRA '${spec.alias}')`);
        if (candidates.length > 1)
          throw new PullError(
            `Multiple .safetensors files found in ${source.repo} (${candidates.map((c) => c.path).join(', ')}): use ${spec.alias}=${source.repo}@<file>`,
          );
        source.file = candidates[0].path;
      }
      expected = files.find((f) => f.path === source.file) ?? {};
      url = resolveUrl(endpoint, source.repo, options.revision ?? 'main', source.file);
    } else {
      url = source.url;
    }
    const dest = loraFilePath(spec, modelDir)!;
    if (fs.existsSync(dest) && !options.overwrite) {
      options.logger.info(`LoRA '${spec.alias}': ${dest} is present`);
      continue;
    }
    // The token goes to the hub only, not to other hosts a URL names.
    const sameHost = source.type === 'hf' || new URL(url).origin === new URL(endpoint).origin;
    options.logger.info(`LoRA '${spec.alias}': downloading ${url}`);
    await downloadFile(url, dest, expected, authFetch(sameHost ? token : undefined), undefined, options);
  }
}
