// The models a server answers for, by name: each model's own name plus its LoRA aliases and composites.
import type { DiffusionModel } from '../diffusion-model';
import { ApiError, badField, shown } from './errors';
import { LoraName, LoraRouter, LoraTarget } from './loras';
import { ModelSettings, buildModelSettings, onNpu } from './settings';

/** What the server uses of a loaded DiffusionModel (tests pass fakes). */
export type ModelLike = Pick<
  DiffusionModel,
  | 'className'
  | 'tasks'
  | 'schedulers'
  | 'supports'
  | 'running'
  | 'waiting'
  | 'text2image'
  | 'image2image'
  | 'inpaint'
  | 'adapterChoices'
  | 'dispose'
>;

export interface ServedModelInit {
  name: string;
  /** The model, or its load in progress (requests wait for it, like OVMS). */
  model: ModelLike | Promise<ModelLike>;
  settings?: ModelSettings;
  /** Its LoRA adapter and composite names (the model itself holds the adapters: LoadOptions.adapters, adapterPresets). */
  loras?: LoraName[];
  /** Model folder, for listing. */
  path?: string;
}

export class ServedModel {
  readonly name: string;
  readonly path?: string;
  readonly settings: ModelSettings;
  readonly loras: LoraRouter;
  readonly ready: Promise<ModelLike>;
  /** Unix seconds when it finished loading (0 while loading). */
  created = 0;
  model?: ModelLike;
  error?: Error;
  /** Requests waiting for the model to finish loading (they count against its queue). */
  loadWaiters = 0;
  /** Moving average of the generation time (engine time, ms), for Retry-After. */
  private averageMs?: number;

  constructor(init: ServedModelInit) {
    this.name = init.name;
    this.path = init.path;
    this.settings = init.settings ?? buildModelSettings({});
    this.loras = new LoraRouter(init.loras ?? [], onNpu(this.settings.device));
    this.ready = Promise.resolve(init.model).then(
      (model) => {
        this.model = model;
        this.created = Math.floor(Date.now() / 1000);
        return model;
      },
      (error: Error) => {
        this.error = error;
        throw error;
      },
    );
    this.ready.catch(() => undefined);
  }

  get state(): 'loading' | 'ready' | 'failed' {
    return this.model ? 'ready' : this.error ? 'failed' : 'loading';
  }

  /** Requests waiting for a slot: in the library's queue, or for the load. */
  get waiting(): number {
    return (this.model?.waiting ?? 0) + this.loadWaiters;
  }

  get running(): number {
    return this.model?.running ?? 0;
  }

  recordGeneration(ms: number): void {
    if (!(ms > 0)) return;
    this.averageMs = this.averageMs === undefined ? ms : 0.8 * this.averageMs + 0.2 * ms;
  }

  /**
   * Seconds until a slot is likely free, for Retry-After: one generation's time shared by the slots, 1..60 s
   * (the OpenAI clients honour up to 60 s). 5 s before the first generation.
   */
  retryAfterSeconds(): number {
    if (this.averageMs === undefined) return 5;
    return Math.min(60, Math.max(1, Math.ceil(this.averageMs / this.settings.maxConcurrency / 1000)));
  }
}

export interface Resolved {
  served: ServedModel;
  target: LoraTarget;
  name: string;
}

export class ModelRegistry {
  readonly models: ServedModel[];
  private readonly byName = new Map<string, ServedModel>();

  constructor(inits: ServedModelInit[]) {
    this.models = inits.map((init) => new ServedModel(init));
    for (const served of this.models) {
      for (const name of [served.name, ...served.loras.aliases]) {
        const other = this.byName.get(name);
        // An alias may repeat its own model's name (OVMS allows that); any other clash is a startup error.
        if (other && !(other === served && name === served.name))
          throw new Error(
            `the name '${name}' is used twice (${other.name}${other === served ? '' : ` and ${served.name}`}); model names and LoRA aliases must be unique`,
          );
        if (!other) this.byName.set(name, served);
      }
    }
  }

  /** Every routable name: the models, then their LoRA aliases. */
  names(): Array<{ id: string; served: ServedModel }> {
    return [...this.byName.entries()].map(([id, served]) => ({ id, served }));
  }

  get allReady(): boolean {
    return this.models.every((m) => m.state === 'ready');
  }

  find(name: string): Resolved | undefined {
    const served = this.byName.get(name);
    if (!served) return undefined;
    return { served, target: name === served.name ? { kind: 'base' } : served.loras.target(name), name };
  }

  /** The model a request names; with one model served, the field may be left out. */
  resolve(name: string | undefined): Resolved {
    if (name === undefined || name === '') {
      if (this.models.length === 1) return { served: this.models[0], target: { kind: 'base' }, name: this.models[0].name };
      throw badField(
        'model',
        `model is required: this server serves ${this.models.map((m) => `'${m.name}'`).join(', ')}`,
        'missing_required_parameter',
      );
    }
    const found = this.find(name);
    if (!found) {
      const known = this.names()
        .map((n) => `'${n.id}'`)
        .join(', ');
      throw new ApiError(404, `The model ${shown(name, 200)} does not exist on this server (served: ${known})`, 'model', 'model_not_found');
    }
    return found;
  }
}
