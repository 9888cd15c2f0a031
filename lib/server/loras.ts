// LoRA adapters of a served model: model-name routing to aliases and composites, and lora_alphas validation (OVMS's
// rules). The names come from the launcher (lib/launcher/lora-sources.ts parses --source_loras and pulls the files).
import type { DiffusionModel } from '../diffusion-model';
import type { AdapterChoice } from '../parameters';
import { badField, shown } from './errors';

/** A name a served model answers to besides its own: one of its LoRA adapters, or a composite (a blend of them). */
export interface LoraName {
  kind: 'adapter' | 'composite';
  alias: string;
}

export type LoraTarget = { kind: 'base' } | { kind: 'adapter'; alias: string } | { kind: 'composite'; alias: string };

/**
 * Model-name routing of one served model: which names are its adapters and composites, and OVMS's rules for
 * lora_alphas. What a name means (the adapters and their alphas) is the library's: the launcher registers the
 * adapters and the composites as the model's adapters and presets (lib/launcher/lora-sources.ts, loraLoadOptions).
 */
export class LoraRouter {
  private readonly kinds = new Map<string, LoraName['kind']>();

  constructor(
    names: readonly LoraName[],
    readonly staticMode: boolean,
  ) {
    for (const { kind, alias } of names) this.kinds.set(alias, kind);
  }

  get aliases(): string[] {
    return [...this.kinds.keys()];
  }
  get isEmpty(): boolean {
    return this.kinds.size === 0;
  }

  target(name: string): LoraTarget {
    const kind = this.kinds.get(name);
    return kind ? { kind, alias: name } : { kind: 'base' };
  }

  /** Checks lora_alphas against the target (OVMS rules) and returns the adapters to activate, with their alphas. */
  resolve(
    target: LoraTarget,
    loraAlphas: Record<string, number> | undefined,
    model: Pick<DiffusionModel, 'adapterChoices'>,
  ): AdapterChoice[] {
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
      const wanted = [...this.kinds.values()].includes('composite') ? 'composite LoRA alias' : 'LoRA alias';
      throw badField(
        'model',
        `this model uses NPU with statically fused LoRA adapters. Send requests to the ${wanted} name instead.`,
        'model_not_supported',
      );
    }
    if (target.kind === 'base') return [];
    const chosen = model.adapterChoices(target.alias);
    const other = keys.find((k) => !chosen.some((c) => c.name === k));
    if (other !== undefined)
      throw badField(
        'lora_alphas',
        target.kind === 'adapter'
          ? `lora_alphas key ${shown(other)} not allowed when targeting adapter '${target.alias}'`
          : `lora_alphas key ${shown(other)} is not part of composite '${target.alias}'`,
      );
    return chosen.map((c) => ({ name: c.name, alpha: overrides[c.name] ?? c.alpha }));
  }
}
