// LoRA adapters of a served model: model-name routing to aliases and composites, and lora_alphas validation (OVMS's
// rules). The specs come from the launcher (lib/launcher/lora-sources.ts parses --source_loras and pulls the files).
import type { AdapterChoice } from '../parameters';
import { badField, shown } from './errors';

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

export type LoraTarget = { kind: 'base' } | { kind: 'adapter'; alias: string } | { kind: 'composite'; alias: string };

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
  resolve(target: LoraTarget, loraAlphas: Record<string, number> | undefined): AdapterChoice[] {
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
        throw badField('lora_alphas', `lora_alphas key ${shown(other)} not allowed when targeting adapter '${target.alias}'`);
      return [{ name: target.alias, alpha: overrides[target.alias] ?? this.adapters.get(target.alias)!.alpha ?? 1 }];
    }
    const composite = this.composites.get(target.alias)!;
    const other = keys.find((k) => !composite.components.some((c) => c.alias === k));
    if (other !== undefined) throw badField('lora_alphas', `lora_alphas key ${shown(other)} is not part of composite '${composite.alias}'`);
    return composite.components.map((c) => ({
      name: c.alias,
      alpha: overrides[c.alias] ?? c.alpha ?? this.adapters.get(c.alias)!.alpha ?? 1,
    }));
  }
}
