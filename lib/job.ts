// A generation as a job handle: its state (queued -> in_progress -> completed / failed / cancelled, queue place, steps)
// and events, and cancel(), instead of a bare promise. The same states as the server's background jobs
// (docs/server.md, Background jobs); DiffusionModel.submit() makes one.
import { EventEmitter } from 'events';
import type { GenerateOptions, GenerationResult, StepProgress } from './diffusion-model';
import { OvDiffusionError } from './errors';
import type { ImageInput } from './images';

export type JobStatus = 'queued' | 'in_progress' | 'completed' | 'failed' | 'cancelled';

/** The options of a call, plus its input images: with `image` image-to-image, with `image` and `mask` inpainting. */
export interface JobOptions extends GenerateOptions {
  image?: ImageInput;
  mask?: ImageInput;
}

/** The events of a job and their arguments. */
export interface JobEvents {
  /** The call waits for a slot: its 1-based place in the model's queue (1 = next), at first and as it moves up. */
  position: [position: number];
  /** The call got its slot. */
  running: [];
  step: [progress: StepProgress];
  completed: [result: GenerationResult];
  failed: [error: Error];
  cancelled: [];
}

/**
 * One generation call with its state. The fields change as the call goes; the events follow in the same order, each
 * delivered on the next tick, so listeners attached right after submit() miss none.
 */
export class GenerationJob extends EventEmitter<JobEvents> {
  status: JobStatus = 'queued';
  /** The place in the queue while the call waits for a slot; null otherwise. */
  position: number | null = null;
  /** Steps done, of totalSteps (the engine's count, known from the first step). */
  step = 0;
  totalSteps: number | null = null;
  result?: GenerationResult;
  error?: Error;
  /** The result; rejects with the error (ERR_ABORTED once cancelled). */
  readonly done: Promise<GenerationResult>;
  private readonly controller = new AbortController();

  /** @internal DiffusionModel.submit() makes jobs. */
  constructor(run: (options: GenerateOptions) => Promise<GenerationResult>, options: GenerateOptions) {
    super();
    const signal = options.signal ? AbortSignal.any([options.signal, this.controller.signal]) : this.controller.signal;
    this.done = new Promise<GenerationResult>((resolve, reject) => {
      run({
        ...options,
        signal,
        onQueuePosition: (position) => {
          this.position = position;
          this.later('position', [position]);
          options.onQueuePosition?.(position);
        },
        onRunning: () => {
          this.status = 'in_progress';
          this.position = null;
          this.later('running', []);
          options.onRunning?.();
        },
        onStep: (progress) => {
          this.step = progress.step + 1;
          this.totalSteps = progress.totalSteps;
          this.later('step', [progress]);
          options.onStep?.(progress);
        },
      }).then(
        (result) => {
          this.result = result;
          this.status = 'completed';
          // `done` settles after the last event, so an await on it sees every event delivered.
          this.later('completed', [result], () => resolve(result));
        },
        (error: Error) => {
          this.error = error;
          this.position = null;
          const cancelled = signal.aborted && error instanceof OvDiffusionError && error.code === 'ERR_ABORTED';
          this.status = cancelled ? 'cancelled' : 'failed';
          if (cancelled) this.later('cancelled', [], () => reject(error));
          else this.later('failed', [error], () => reject(error));
        },
      );
    });
    // Awaiting `done` is optional: a failure is reported through the status and the events too.
    this.done.catch(() => undefined);
  }

  /** Cancels the call: a waiting call leaves the queue, a running one stops at its next denoising step. */
  cancel(): void {
    if (this.status === 'queued' || this.status === 'in_progress')
      this.controller.abort(new OvDiffusionError('ERR_ABORTED', 'the job was cancelled'));
  }

  private later<K extends keyof JobEvents>(event: K, args: JobEvents[K], after?: () => void): void {
    process.nextTick(() => {
      try {
        (this.emit as (event: K, ...args: JobEvents[K]) => boolean)(event, ...args);
      } finally {
        after?.();
      }
    });
  }
}
