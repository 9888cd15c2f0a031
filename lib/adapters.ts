// LoRA adapters of one model: the files registered at load with their default alphas, and named blends of them
// (presets). What a call's adapter selection means is decided here, once: the library's `adapters` option and the
// server's model-name routing (an alias is an adapter, a composite is a preset) both resolve through this class.
import type { NativeAdapterSpec } from './binding';
import { OvDiffusionError } from './errors';
import type { AdapterChoice } from './parameters';

/** Adapters for one call: an alias or preset name, a list of those or of {name, alpha}, or { alias: alpha }. */
export type AdapterSelection = string | Array<string | AdapterChoice> | Record<string, number>;
/** LoRA files by alias, with the alpha used when a call names them without one (default 1). */
export type AdapterFiles = Record<string, string | { path: string; alpha?: number }>;
/** Named blends of registered adapters, e.g. { 'ink-and-wash': { ink: 0.6, wash: 0.4 } }. */
export type AdapterPresets = Record<string, Record<string, number>>;

const DEFAULT_ALPHA = 1;

function invalid(message: string): OvDiffusionError {
  return new OvDiffusionError('ERR_INVALID_ARGUMENT', message, { param: 'adapters' });
}

export class AdapterRegistry {
  /** What the engine registers at load, in order. */
  readonly specs: readonly NativeAdapterSpec[];
  readonly presets: Readonly<AdapterPresets>;
  private readonly alphas = new Map<string, number>();

  constructor(files: AdapterFiles = {}, presets: AdapterPresets = {}) {
    this.specs = Object.entries(files).map(([name, spec]) =>
      typeof spec === 'string' ? { name, path: spec } : { name, path: spec.path, alpha: spec.alpha },
    );
    for (const spec of this.specs) this.alphas.set(spec.name, spec.alpha ?? DEFAULT_ALPHA);
    for (const [preset, blend] of Object.entries(presets)) {
      if (this.alphas.has(preset)) throw new OvDiffusionError('ERR_INVALID_ARGUMENT', `preset '${preset}' has the name of an adapter`);
      for (const alias of Object.keys(blend))
        if (!this.alphas.has(alias))
          throw new OvDiffusionError('ERR_INVALID_ARGUMENT', `preset '${preset}' names unknown adapter '${alias}'`);
    }
    this.presets = Object.freeze({ ...presets });
  }

  /** Whether `name` is a registered adapter or a preset. */
  has(name: string): boolean {
    return this.alphas.has(name) || Object.hasOwn(this.presets, name);
  }

  /**
   * The adapters and alphas a selection means: presets expand to their blend, a name without an alpha takes its
   * registered alpha. Unknown names are kept as given; the engine refuses them with the list of known ones.
   */
  choices(selection: AdapterSelection): AdapterChoice[] {
    const byName = (name: string): AdapterChoice[] =>
      Object.hasOwn(this.presets, name) ? this.fromRecord(this.presets[name]) : [this.withAlpha(name)];
    if (typeof selection === 'string') return byName(selection);
    if (Array.isArray(selection)) {
      return selection.flatMap((entry) => {
        if (typeof entry === 'string') return byName(entry);
        if (entry && typeof entry.name === 'string') return [this.withAlpha(entry.name, entry.alpha)];
        throw invalid('adapters entries must be names or {name, alpha}');
      });
    }
    if (selection && typeof selection === 'object') return this.fromRecord(selection);
    throw invalid('adapters must be a name, a list or {name: alpha}');
  }

  private fromRecord(record: Record<string, number>): AdapterChoice[] {
    return Object.entries(record).map(([name, alpha]) => this.withAlpha(name, alpha));
  }

  private withAlpha(name: string, alpha?: number): AdapterChoice {
    const resolved = alpha ?? this.alphas.get(name);
    return resolved === undefined ? { name } : { name, alpha: resolved };
  }
}
