// --source_loras: OVMS's grammar (with its messages), where pulled LoRA files go, and the library load options
// they become. Serving them (routing, lora_alphas) is lib/server/loras.ts.
import * as fs from 'fs';
import * as path from 'path';
import type { LoadOptions } from '../diffusion-model';

export type LoraSource =
  { type: 'hf'; repo: string; file?: string } | { type: 'url'; url: string; file: string } | { type: 'local'; path: string; file: string };

export interface LoraAdapterSpec {
  kind: 'adapter';
  alias: string;
  source: LoraSource;
  alpha?: number;
}
export interface LoraCompositeSpec {
  kind: 'composite';
  alias: string;
  components: Array<{ alias: string; alpha?: number }>;
}
export type LoraSpec = LoraAdapterSpec | LoraCompositeSpec;

const ALIAS = /^[A-Za-z0-9._-]+$/;
const STRICT_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const SAFETENSORS = /\.safetensors$/i;

function parseStrictAlpha(text: string, entry: string): number {
  if (!STRICT_NUMBER.test(text)) throw new Error(`Invalid alpha value '${text}' in --source_loras entry '${entry}'`);
  return Number(text);
}

function isLocalPath(source: string): boolean {
  return (
    source.startsWith('/') ||
    source.startsWith('./') ||
    source.startsWith('.\\') ||
    source.startsWith('../') ||
    /^[A-Za-z]:[\\/]/.test(source)
  );
}

/** Splits "source:alpha"; the colon of a drive letter, of http:// and of a URL port are not alpha separators. */
function splitAlpha(source: string, entry: string): { source: string; alpha?: number } {
  const colon = source.lastIndexOf(':');
  if (colon <= 1) return { source };
  const tail = source.slice(colon + 1);
  if (tail.startsWith('//')) return { source };
  // OVMS reads "https://host:8080/f.safetensors" as alpha "8080/f.safetensors"; a port is followed by a path.
  if (/^https?:\/\//i.test(source) && /^\d+\//.test(tail)) return { source };
  return { source: source.slice(0, colon), alpha: parseStrictAlpha(tail, entry) };
}

/** "Ukiyo-e%20Art.safetensors" (as the OVMS demo writes it) and "Ukiyo-e Art.safetensors" name the same file. */
function decodeFileName(file: string): string {
  try {
    return decodeURIComponent(file);
  } catch {
    return file;
  }
}

function parseAdapterSource(source: string, entry: string, exists: (p: string) => boolean): LoraSource {
  if (/^https?:\/\//i.test(source)) {
    const file = source.slice(source.lastIndexOf('/') + 1).split(/[?#]/)[0];
    if (!file) throw new Error(`Cannot extract filename from URL '${source}' in --source_loras entry '${entry}'`);
    if (!SAFETENSORS.test(file)) throw new Error(`URL must point to a .safetensors file: '${source}'`);
    return { type: 'url', url: source, file };
  }
  if (isLocalPath(source)) {
    if (!SAFETENSORS.test(source)) throw new Error(`Local path must point to a .safetensors file: '${source}'`);
    if (!exists(source)) throw new Error(`Local LoRA file does not exist: ${source}`);
    return { type: 'local', path: source, file: source.split(/[\\/]/).pop()! };
  }
  const at = source.indexOf('@');
  const repo = at < 0 ? source : source.slice(0, at);
  const file = at < 0 ? undefined : decodeFileName(source.slice(at + 1));
  if (!repo) throw new Error(`Invalid --source_loras entry '${entry}'. Alias and source must not be empty.`);
  if (file === '') throw new Error(`Empty filename after @ in --source_loras entry '${entry}'`);
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo) || repo.includes('..'))
    throw new Error(
      `'${repo}' in --source_loras entry '${entry}' is not a Hugging Face repository id (org/repo), an http(s) URL or a local path starting with / or ./`,
    );
  if (file !== undefined && (file.includes('..') || file.startsWith('/')))
    throw new Error(`Invalid file name '${file}' in --source_loras entry '${entry}'`);
  return { type: 'hf', repo, file };
}

function parseComposite(alias: string, source: string, entry: string, adapters: Map<string, LoraAdapterSpec>): LoraCompositeSpec {
  const components = source.split('+').map((part) => {
    if (!part.startsWith('@'))
      throw new Error(`Invalid composite LoRA component '${part}' in entry '${entry}'. Each component must start with @`);
    const body = part.slice(1);
    const colon = body.indexOf(':');
    const ref = colon < 0 ? body : body.slice(0, colon);
    if (!ref) throw new Error(`Empty adapter reference in composite LoRA entry '${entry}'`);
    let alpha: number | undefined;
    if (colon >= 0) {
      alpha = Number.parseFloat(body.slice(colon + 1));
      if (!Number.isFinite(alpha)) throw new Error(`Invalid alpha '${body.slice(colon + 1)}' in composite LoRA component '${part}'`);
    }
    if (!adapters.has(ref)) throw new Error(`Composite LoRA references unknown adapter '${ref}' in entry '${entry}'`);
    return { alias: ref, alpha };
  });
  if (new Set(components.map((c) => c.alias)).size !== components.length)
    throw new Error(`Composite LoRA '${alias}' names an adapter twice`);
  return { kind: 'composite', alias, components };
}

/** Parses --source_loras. Real adapters are collected first, composites second, so order does not matter. */
export function parseSourceLoras(text: string, options: { device?: string; exists?: (p: string) => boolean } = {}): LoraSpec[] {
  const exists = options.exists ?? ((p: string) => fs.existsSync(p));
  const entries = text.split(',');
  if (entries.length > 1 && entries[entries.length - 1] === '') entries.pop();
  const adapters = new Map<string, LoraAdapterSpec>();
  const composites: Array<[string, string, string]> = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    if (entry === '' && entries.length === 1) continue;
    const eq = entry.indexOf('=');
    if (eq < 0) throw new Error(`Missing alias in --source_loras entry: '${entry}'. Expected format: alias=source`);
    const alias = entry.slice(0, eq);
    const source = entry.slice(eq + 1);
    if (!alias || !source) throw new Error(`Invalid --source_loras entry '${entry}'. Alias and source must not be empty.`);
    if (!ALIAS.test(alias))
      throw new Error(
        `Invalid LoRA alias '${alias}' in --source_loras entry '${entry}'. Alias must contain only alphanumeric characters, hyphens, underscores, or dots.`,
      );
    if (seen.has(alias)) throw new Error(`LoRA alias '${alias}' is defined twice in --source_loras`);
    seen.add(alias);
    if (source.startsWith('@')) {
      composites.push([alias, source, entry]);
      continue;
    }
    const split = splitAlpha(source, entry);
    adapters.set(alias, { kind: 'adapter', alias, source: parseAdapterSource(split.source, entry, exists), alpha: split.alpha });
  }
  const specs: LoraSpec[] = [
    ...adapters.values(),
    ...composites.map(([alias, source, entry]) => parseComposite(alias, source, entry, adapters)),
  ];
  if (options.device?.includes('NPU')) validateStaticLoras(specs);
  return specs;
}

/** NPU compiles adapters in with fixed alphas: one adapter, or one composite covering every adapter. */
function validateStaticLoras(specs: LoraSpec[]): void {
  const adapters = specs.filter((s): s is LoraAdapterSpec => s.kind === 'adapter');
  const composites = specs.filter((s): s is LoraCompositeSpec => s.kind === 'composite');
  if (composites.length > 1) throw new Error('NPU device supports at most one composite LoRA definition');
  if (adapters.length > 1 && !composites.length)
    throw new Error('NPU device with multiple LoRA adapters requires composite definitions (e.g. blend=@a:0.5+@b:0.5)');
  if (composites.length) {
    const used = new Set(composites[0].components.map((c) => c.alias));
    const unused = adapters.find((a) => !used.has(a.alias));
    if (unused) throw new Error(`NPU device: adapter '${unused.alias}' is not part of the composite '${composites[0].alias}'`);
  }
}

/** Where an adapter's file is (or goes when pulled): HF files under loras/<org>/<repo>/, URLs under loras/<alias>/. */
export function loraFilePath(spec: LoraAdapterSpec, modelDir: string): string | undefined {
  const { source } = spec;
  if (source.type === 'local') return path.resolve(source.path);
  if (source.type === 'url') return path.join(modelDir, 'loras', spec.alias, source.file);
  return source.file ? path.join(modelDir, 'loras', ...source.repo.split('/'), source.file) : undefined;
}

/**
 * The library load options for a model's LoRA specs: every adapter by alias with its registered alpha, and every
 * composite as a preset with its alphas resolved (OVMS's priority: the composite's, the adapter's, 1). On NPU the
 * adapters are fused into the weights at load (the device compiles static models) with the alphas of the one
 * composite when there is one (parse time checked that it covers every adapter); elsewhere they stay switchable.
 */
export function loraLoadOptions(
  specs: LoraSpec[],
  modelDir: string,
  fused: boolean,
): Pick<LoadOptions, 'adapters' | 'adapterMode' | 'adapterPresets'> {
  const adapters: Record<string, { path: string; alpha?: number }> = {};
  for (const spec of specs) {
    if (spec.kind !== 'adapter') continue;
    const file = loraFilePath(spec, modelDir);
    if (file) adapters[spec.alias] = { path: file, alpha: spec.alpha };
  }
  if (!Object.keys(adapters).length) return {};
  const adapterPresets: NonNullable<LoadOptions['adapterPresets']> = {};
  for (const spec of specs) {
    if (spec.kind !== 'composite') continue;
    adapterPresets[spec.alias] = Object.fromEntries(spec.components.map((c) => [c.alias, c.alpha ?? adapters[c.alias]?.alpha ?? 1]));
  }
  if (!fused) return { adapters, adapterPresets };
  for (const blend of Object.values(adapterPresets))
    for (const [alias, alpha] of Object.entries(blend)) adapters[alias] = { ...adapters[alias], alpha };
  return { adapters, adapterMode: 'fuse', adapterPresets };
}
