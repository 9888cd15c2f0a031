// The public API as a TypeScript user of the package sees it (checked by test/package-api.test.js with tsc --noEmit).
import {
  DiffusionModel,
  GenerateOptions,
  AdapterChoice,
  OvDiffusionError,
  GENERATION_PARAMETERS,
  SchedulerName,
  GenerationJob,
  JobStatus,
} from 'ov-diffusion';
import { createApp, ServedModelInit } from 'ov-diffusion/server';

export async function draw(dir: string): Promise<Buffer> {
  const model = await DiffusionModel.load(dir, { adapters: { ink: './ink.safetensors' }, adapterPresets: { soft: { ink: 0.3 } } });
  const choice: AdapterChoice = { name: 'ink', alpha: 0.5 };
  const scheduler: SchedulerName = 'EULER_DISCRETE';
  const options: GenerateOptions = { numInferenceSteps: 4, seed: 1, scheduler, adapters: [choice], taylorseer: { cacheInterval: 3 } };
  try {
    const { images } = await model.text2image('a red circle', options);
    return images[0].toPng();
  } catch (error) {
    if (error instanceof OvDiffusionError && error.code === 'ERR_INVALID_ARGUMENT') console.log(error.param);
    throw error;
  }
}

export function follow(model: DiffusionModel): GenerationJob {
  const job = model.submit('a fox', { numInferenceSteps: 4, onRunning: () => undefined });
  job.on('step', ({ step, totalSteps }) => console.log(step, totalSteps));
  job.on('position', (position: number) => console.log(position));
  job.on('completed', (result) => console.log(result.images.length));
  const status: JobStatus = job.status;
  console.log(status, job.position);
  return job;
}

export const fields: string[] = GENERATION_PARAMETERS.map((p) => p.field);
export const served: ServedModelInit = { name: 'demo', model: DiffusionModel.load('./demo') };
export const app = createApp({ models: [served] });

// @ts-expect-error: not a job event
export const badEvent = (job: GenerationJob) => job.on('finished', () => undefined);
// @ts-expect-error: not a scheduler name
export const badScheduler: GenerateOptions = { scheduler: 'NOPE' };
// @ts-expect-error: a step count is a number
export const badSteps: GenerateOptions = { numInferenceSteps: '4' };
// @ts-expect-error: not a generation option
export const unknownOption: GenerateOptions = { num_inference_steps: 4 };
