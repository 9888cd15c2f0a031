// LoRA adapters: the --source_loras grammar (OVMS's, with its messages), where pulled files go, model-name routing
// to aliases and composites, and lora_alphas validation. The library's adapter API is reached only from here.
import * as fs from 'fs';
import * as path from 'path';
import { ApiError, badField } from './errors';

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

// ---- serving ----

export type LoraTarget = { kind: 'base' } | { kind: 'adapter'; alias: string } | { kind: 'composite'; alias: string };
export interface ActiveAdapter {
  name: string;
  alpha: number;
}

/** The adapters of one served model and the rules for requests that name them. */
export class LoraRouter {
  private readonly adapters = new Map<string, LoraAdapterSpec>();
  private readonly composites = new Map<string, LoraCompositeSpec>();

  constructor(
    specs: LoraSpec[],
    readonly staticMode: boolean,
  ) {
    for (const spec of specs) {
      if (spec.kind === 'adapter') this.adapters.set(spec.alias, spec);
      else this.composites.set(spec.alias, spec);
    }
  }

  get aliases(): string[] {
    return [...this.adapters.keys(), ...this.composites.keys()];
  }
  get isEmpty(): boolean {
    return this.adapters.size === 0;
  }

  target(name: string): LoraTarget {
    if (this.composites.has(name)) return { kind: 'composite', alias: name };
    if (this.adapters.has(name)) return { kind: 'adapter', alias: name };
    return { kind: 'base' };
  }

  /** Checks lora_alphas against the target (OVMS rules) and returns the adapters to activate, with their alphas. */
  resolve(target: LoraTarget, loraAlphas: Record<string, number> | undefined): ActiveAdapter[] {
    const overrides = loraAlphas ?? {};
    const keys = Object.keys(overrides);
    if (keys.length && (this.isEmpty || this.staticMode))
      throw badField(
        'lora_alphas',
        'lora_alphas is not supported when no dynamic LoRA adapters are available. ' +
          'Alpha values cannot be overridden for STATIC (NPU) or FUSE mode adapters.',
        'lora_alphas_not_supported',
      );
    if (this.staticMode && target.kind === 'base' && !this.isEmpty) {
      const wanted = this.composites.size ? 'composite LoRA alias' : 'LoRA alias';
      throw badField(
        'model',
        `this model uses NPU with statically fused LoRA adapters. Send requests to the ${wanted} name instead.`,
        'model_not_supported',
      );
    }
    if (target.kind === 'base') return [];
    if (target.kind === 'adapter') {
      const other = keys.find((k) => k !== target.alias);
      if (other !== undefined)
        throw badField('lora_alphas', `lora_alphas key '${other}' not allowed when targeting adapter '${target.alias}'`);
      return [{ name: target.alias, alpha: overrides[target.alias] ?? this.adapters.get(target.alias)!.alpha ?? 1 }];
    }
    const composite = this.composites.get(target.alias)!;
    const other = keys.find((k) => !composite.components.some((c) => c.alias === k));
    if (other !== undefined) throw badField('lora_alphas', `lora_alphas key '${other}' is not part of composite '${composite.alias}'`);
    return composite.components.map((c) => ({
      name: c.alias,
      alpha: overrides[c.alias] ?? c.alpha ?? this.adapters.get(c.alias)!.alpha ?? 1,
    }));
  }

  /** The library's planned LoadOptions.adapters: alias -> {path, alpha}. */
  loadAdapters(modelDir: string): Record<string, { path: string; alpha?: number }> {
    const out: Record<string, { path: string; alpha?: number }> = {};
    for (const spec of this.adapters.values()) {
      const file = loraFilePath(spec, modelDir);
      if (file) out[spec.alias] = { path: file, alpha: spec.alpha };
    }
    return out;
  }
}

/** True when the loaded library model took the adapters (it reports them as `adapters`); until then LoRA requests get 501. */
export function libraryHasAdapters(model: object): boolean {
  const adapters = (model as { adapters?: unknown }).adapters;
  return adapters !== undefined && adapters !== null;
}

export function adaptersNotAvailable(alias: string): ApiError {
  return new ApiError(
    501,
    `LoRA adapter '${alias}' is configured, but this build of the ov-diffusion library cannot apply LoRA adapters yet; ` +
      'requests to the base model work.',
    'model',
    'lora_not_supported',
  );
}
