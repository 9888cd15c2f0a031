// The playground page: a form for /images/generations and /images/edits run as background jobs (docs/server.md),
// each job followed by its events (queue position, steps, previews), and a gallery of this session's results.
// Values left empty are left out of the request, so the server's defaults and checks apply; its errors are shown as
// it words them.
import { Api, ApiFailure, JobEvent, JobObject, ModelOptions } from './api.js';
import { ImageEditor } from './editor.js';

type Mode = 'text' | 'image' | 'inpaint';

const api = new Api();
api.key = sessionStorage.getItem('ov-diffusion-api-key') ?? '';

const $ = <T extends HTMLElement>(selector: string, root: ParentNode = document): T => {
  const found = root.querySelector<T>(selector);
  if (!found) throw new Error(`the page has no ${selector}`);
  return found;
};

const form = $<HTMLFormElement>('#generate');
const modelSelect = $<HTMLSelectElement>('#model');
const loraSelect = $<HTMLSelectElement>('#lora');
const schedulerSelect = $<HTMLSelectElement>('#scheduler');
const errorBox = $<HTMLDivElement>('#error');
const jobsList = $<HTMLUListElement>('#jobs');
const serverStatus = $<HTMLParagraphElement>('#server-status');
const editor = new ImageEditor($<HTMLCanvasElement>('#image-canvas'), $<HTMLCanvasElement>('#mask-canvas'));

let options: ModelOptions[] = [];

function field<T extends HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>(name: string): T {
  return $<T>(`#${name}`, form);
}

function mode(): Mode {
  return ($<HTMLInputElement>('input[name="mode"]:checked').value as Mode) ?? 'text';
}

function setMode(next: Mode): void {
  $<HTMLInputElement>(`input[name="mode"][value="${next}"]`).checked = true;
  document.body.dataset.mode = next;
  editor.painting = next === 'inpaint';
}

// --- errors ----------------------------------------------------------------------------------------------------

function clearError(): void {
  errorBox.hidden = true;
  errorBox.textContent = '';
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

/** Shows the API's message as it is, and marks the field it names. */
function showError(error: unknown): void {
  const failure = error instanceof ApiFailure ? error : new ApiFailure(0, (error as Error).message);
  if (failure.status === 401) askForKey(failure.message);
  errorBox.textContent = failure.message;
  if (failure.code || failure.param)
    errorBox.append(
      document.createElement('br'),
      `(${[failure.code, failure.param && `field ${failure.param}`].filter(Boolean).join(', ')})`,
    );
  errorBox.hidden = false;
  const param = failure.param?.replace(/\[.*$/, '');
  const target = param ? form.querySelector<HTMLElement>(`[name="${param === 'num_images_per_prompt' ? 'n' : param}"]`) : null;
  if (target) target.setAttribute('aria-invalid', 'true');
  // The key box takes the focus when the key is what is missing.
  if (failure.status !== 401) errorBox.focus();
}

// --- the API key -----------------------------------------------------------------------------------------------

function askForKey(reason: string): void {
  const box = $<HTMLElement>('#key-box');
  $<HTMLElement>('#key-reason').textContent = `The server needs an API key: ${reason}`;
  box.hidden = false;
  $<HTMLInputElement>('#api-key').focus();
}

$<HTMLFormElement>('#key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  api.key = $<HTMLInputElement>('#api-key').value.trim();
  sessionStorage.setItem('ov-diffusion-api-key', api.key);
  $<HTMLElement>('#key-box').hidden = true;
  clearError();
  void loadModels();
});

// --- models, LoRAs, schedulers ---------------------------------------------------------------------------------

function option(value: string, text = value): HTMLOptionElement {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  return o;
}

async function loadModels(): Promise<void> {
  try {
    const list = await api.json<{ data: ModelOptions[] }>('GET', 'v3/images/models');
    options = list.data;
  } catch (error) {
    serverStatus.textContent = 'The model list could not be read.';
    showError(error);
    return;
  }
  const chosen = modelSelect.value;
  modelSelect.replaceChildren(
    ...options.filter((o) => o.kind === 'model').map((o) => option(o.id, o.state === 'ready' ? o.id : `${o.id} (${o.state})`)),
  );
  if (options.some((o) => o.id === chosen)) modelSelect.value = chosen;
  const loading = options.filter((o) => o.kind === 'model' && o.state === 'loading');
  serverStatus.textContent = loading.length
    ? `Loading ${loading.map((o) => o.id).join(', ')}… (requests wait for it)`
    : `${modelSelect.options.length} model(s) ready.`;
  if (loading.length) setTimeout(() => void loadModels(), 2000);
  modelChanged();
}

function current(): ModelOptions | undefined {
  return options.find((o) => o.id === modelSelect.value);
}

function modelChanged(): void {
  const model = current();
  if (!model) return;
  const loras = options.filter((o) => o.base_model === model.id && o.kind !== 'model');
  const chosenLora = loraSelect.value;
  loraSelect.replaceChildren(option('', 'none'), ...loras.map((o) => option(o.id, o.kind === 'composite' ? `${o.id} (blend)` : o.id)));
  loraSelect.disabled = !loras.length;
  if (loras.some((o) => o.id === chosenLora)) loraSelect.value = chosenLora;
  const scheduler = schedulerSelect.value;
  schedulerSelect.replaceChildren(option('', "model's own"), ...model.schedulers.filter((s) => s !== 'AUTO').map((s) => option(s)));
  schedulerSelect.value = scheduler;
  $<HTMLDataListElement>('#sizes').replaceChildren(
    ...(model.sizes.length ? model.sizes : ['64x64', '128x128', '256x256', '512x512', '768x768', '1024x1024']).map((s) => option(s)),
  );
  const size = field<HTMLInputElement>('size');
  size.placeholder = model.default_size ?? 'model default';
  const steps = field<HTMLInputElement>('num_inference_steps');
  steps.max = String(model.max_num_inference_steps);
  steps.placeholder = `${model.default_num_inference_steps} (server default)`;
  field<HTMLInputElement>('guidance_scale').placeholder =
    model.default_guidance_scale !== null ? `${model.default_guidance_scale} (server default)` : 'model default';
  field<HTMLInputElement>('n').max = String(model.max_n);
  for (const [value, task] of [
    ['image', 'image2image'],
    ['inpaint', 'inpainting'],
    ['text', 'text2image'],
  ] as const) {
    const radio = $<HTMLInputElement>(`input[name="mode"][value="${value}"]`);
    radio.disabled = model.tasks !== null && !model.tasks.includes(task);
  }
  loraChanged();
}

function loraChanged(): void {
  const lora = options.find((o) => o.id === loraSelect.value);
  const box = $<HTMLFieldSetElement>('#lora-alphas');
  const inputs = $<HTMLDivElement>('#alpha-inputs');
  inputs.replaceChildren();
  box.hidden = !lora?.lora_alphas || !lora.lora_alphas_allowed;
  if (box.hidden) return;
  for (const [name, alpha] of Object.entries(lora!.lora_alphas!)) {
    const div = document.createElement('div');
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'number';
    input.step = '0.05';
    input.id = `alpha-${name}`;
    input.dataset.adapter = name;
    input.value = String(alpha);
    input.name = 'lora_alphas';
    label.htmlFor = input.id;
    label.textContent = `${name} alpha`;
    div.append(label, input);
    inputs.append(div);
  }
}

modelSelect.addEventListener('change', modelChanged);
loraSelect.addEventListener('change', loraChanged);

// --- the input image and the mask ------------------------------------------------------------------------------

function editorChanged(): void {
  $<HTMLElement>('#input-image').classList.toggle('loaded', editor.hasImage);
  $<HTMLElement>('#input-size').textContent = editor.hasImage
    ? `Input ${editor.size} (the output has this size unless Size is set)`
    : 'No input image yet.';
  $<HTMLElement>('#mask-coverage').textContent = `Mask: ${Math.round(editor.maskCoverage() * 100)}% of the image.`;
}
editor.onChange = editorChanged;

$<HTMLInputElement>('#upload').addEventListener('change', async (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (!file) return;
  clearError();
  try {
    await editor.loadBlob(file);
  } catch {
    showError(new ApiFailure(0, `${file.name} could not be read as an image`));
  }
});
for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="tool"]'))
  radio.addEventListener('change', () => {
    editor.tool = radio.value as 'brush' | 'eraser';
  });
$<HTMLInputElement>('#brush-size').addEventListener('input', (e) => {
  editor.brushSize = Number((e.target as HTMLInputElement).value);
});
$<HTMLButtonElement>('#mask-clear').addEventListener('click', () => editor.clearMask());
$<HTMLButtonElement>('#mask-fill').addEventListener('click', () => editor.fillMask());
$<HTMLButtonElement>('#mask-invert').addEventListener('click', () => editor.invertMask());
for (const button of document.querySelectorAll<HTMLButtonElement>('[data-extend]'))
  button.addEventListener('click', () => {
    const by = Number($<HTMLSelectElement>('#extend-by').value);
    const side = button.dataset.extend!;
    const all = side === 'all';
    editor.extend({
      top: all || side === 'top' ? by : 0,
      right: all || side === 'right' ? by : 0,
      bottom: all || side === 'bottom' ? by : 0,
      left: all || side === 'left' ? by : 0,
    });
  });
for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="mode"]'))
  radio.addEventListener('change', () => {
    setMode(radio.value as Mode);
    editorChanged();
  });
$<HTMLButtonElement>('#dice').addEventListener('click', () => {
  field<HTMLInputElement>('rng_seed').value = String(crypto.getRandomValues(new Uint32Array(1))[0]);
});

// --- requests --------------------------------------------------------------------------------------------------

/** The request fields: empty inputs are left out (the server's defaults apply); values go as typed. */
function requestFields(): Record<string, unknown> {
  const fields: Record<string, unknown> = { prompt: field<HTMLTextAreaElement>('prompt').value };
  fields.model = loraSelect.value || modelSelect.value;
  const text = (name: string) => field<HTMLInputElement>(name).value.trim();
  if (text('negative_prompt')) fields.negative_prompt = text('negative_prompt');
  if (text('size')) fields.size = text('size');
  if (schedulerSelect.value) fields.scheduler = schedulerSelect.value;
  for (const name of ['num_inference_steps', 'guidance_scale', 'rng_seed', 'n', 'partial_images']) {
    // A number the browser cannot parse is sent as typed, so the server's message names it.
    if (text(name)) fields[name] = Number.isNaN(Number(text(name))) ? text(name) : Number(text(name));
  }
  if (mode() !== 'text' && text('strength')) fields.strength = Number(text('strength'));
  const alphas = [...document.querySelectorAll<HTMLInputElement>('#alpha-inputs input')];
  if (alphas.length && !$<HTMLFieldSetElement>('#lora-alphas').hidden)
    fields.lora_alphas = Object.fromEntries(alphas.map((input) => [input.dataset.adapter!, Number(input.value)]));
  return fields;
}

/** What a result card says about how it was made. */
interface Made {
  fields: Record<string, unknown>;
  mode: Mode;
}

/** Each followed job holds a connection, and browsers open 6 per server: some stay free for the other calls. */
const MAX_FOLLOWED_JOBS = 4;

async function submit(): Promise<void> {
  clearError();
  if (
    jobsList.querySelectorAll('li:not([data-status="completed"], [data-status="failed"], [data-status="cancelled"])').length >=
    MAX_FOLLOWED_JOBS
  )
    throw new ApiFailure(0, `This page follows at most ${MAX_FOLLOWED_JOBS} jobs at once: wait for one to finish, or cancel one.`);
  const fields = requestFields();
  const current = mode();
  // Without a size, inpainting would make the model's default size: the input's size is what is meant.
  if (current !== 'text' && editor.hasImage) fields.size ??= editor.size;
  let job: JobObject;
  if (current === 'text') {
    job = await api.json<JobObject>('POST', 'v3/images/generations', { ...fields, background: true });
  } else {
    if (!editor.hasImage) throw new ApiFailure(0, 'Upload an input image first (or use a result from the gallery).', null, 'image');
    const body = new FormData();
    for (const [name, value] of Object.entries(fields))
      body.append(name, typeof value === 'object' ? JSON.stringify(value) : String(value));
    body.append('background', 'true');
    body.append('image', await editor.imageBlob(), 'image.png');
    if (current === 'inpaint') body.append('mask', await editor.maskBlob(), 'mask.png');
    job = await api.form<JobObject>('v3/images/edits', body);
  }
  void track(job, { fields, mode: current });
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const button = $<HTMLButtonElement>('#submit');
  button.disabled = true;
  submit()
    .catch(showError)
    .finally(() => {
      button.disabled = false;
    });
});

// --- jobs ------------------------------------------------------------------------------------------------------

function jobsChanged(): void {
  $<HTMLElement>('#no-jobs').hidden = jobsList.children.length > 0;
}

function statusText(job: JobObject): string {
  switch (job.status) {
    case 'queued':
      return job.queue_position ? `Queued: position ${job.queue_position}` : 'Queued (waiting for the model)';
    case 'in_progress':
      return job.total_steps ? `Step ${job.step} of ${job.total_steps}` : 'Running';
    case 'completed':
      return 'Completed';
    case 'cancelled':
      return 'Cancelled';
    case 'failed':
      return `Failed: ${job.error?.message ?? 'unknown error'}`;
  }
}

async function track(created: JobObject, made: Made): Promise<void> {
  const item = ($<HTMLTemplateElement>('#job-template').content.firstElementChild as HTMLLIElement).cloneNode(true) as HTMLLIElement;
  item.dataset.jobId = created.id;
  $<HTMLElement>('.job-title', item).textContent = `${String(made.fields.prompt).slice(0, 80)} (${created.model}, seed ${created.seed})`;
  const progress = $<HTMLProgressElement>('progress', item);
  const status = $<HTMLElement>('.job-status', item);
  const preview = $<HTMLImageElement>('.job-preview', item);
  const cancel = $<HTMLButtonElement>('.job-cancel', item);
  jobsList.prepend(item);
  jobsChanged();
  const show = (job: JobObject) => {
    progress.value = job.progress;
    status.textContent = statusText(job);
    item.dataset.status = job.status;
  };
  show(created);
  cancel.addEventListener('click', () => {
    cancel.disabled = true;
    status.textContent = 'Cancelling…';
    api.json<JobObject>('DELETE', `v3/images/jobs/${created.id}`).then(show, showError);
  });
  let last = created;
  try {
    await api.follow(created.id, (event: JobEvent) => {
      last = event.data.job;
      show(last);
      if (event.type === 'image_job.partial_image' && typeof event.data.b64_json === 'string') {
        preview.src = `data:image/${event.data.output_format === 'jpeg' ? 'jpeg' : event.data.output_format};base64,${event.data.b64_json}`;
        preview.alt = `Preview ${Number(event.data.partial_image_index) + 1} of ${made.fields.partial_images ?? 0}`;
        preview.hidden = false;
        item.dataset.previews = String(Number(item.dataset.previews ?? 0) + 1);
      }
    });
    if (last.status === 'completed') {
      for (let index = 0; index < last.n; index++) {
        const blob = await api.blob(`v3/images/jobs/${created.id}/content?index=${index}`);
        addResult(blob, last, index, made);
      }
      item.remove();
    } else {
      cancel.hidden = true;
      if (last.status === 'failed' && last.error) showError(new ApiFailure(0, last.error.message, last.error.code, last.error.param));
      setTimeout(() => {
        item.remove();
        jobsChanged();
      }, 4000);
    }
  } catch (error) {
    cancel.hidden = true;
    status.textContent = `Lost track of the job: ${(error as Error).message}`;
    showError(error);
  }
  jobsChanged();
}

// --- the gallery -----------------------------------------------------------------------------------------------

function describe(job: JobObject, index: number, made: Made): string {
  const f = made.fields;
  const parts = [
    `"${String(f.prompt)}"`,
    f.negative_prompt ? `negative "${String(f.negative_prompt)}"` : '',
    `model ${String(f.model)}`,
    { text: 'text to image', image: 'image to image', inpaint: 'inpainting' }[made.mode],
    `size ${job.size}`,
    `steps ${job.total_steps ?? ''}`,
    `seed ${job.seed}`,
    job.n > 1 ? `image ${index + 1} of ${job.n}` : '',
    f.scheduler ? `scheduler ${String(f.scheduler)}` : '',
    f.guidance_scale !== undefined ? `guidance ${String(f.guidance_scale)}` : '',
    f.strength !== undefined ? `strength ${String(f.strength)}` : '',
    f.lora_alphas ? `alphas ${JSON.stringify(f.lora_alphas)}` : '',
    job.timings.total_ms !== null ? `${(job.timings.total_ms / 1000).toFixed(1)} s` : '',
  ];
  return parts.filter(Boolean).join(' · ');
}

function addResult(blob: Blob, job: JobObject, index: number, made: Made): void {
  const url = URL.createObjectURL(blob);
  const item = ($<HTMLTemplateElement>('#result-template').content.firstElementChild as HTMLLIElement).cloneNode(true) as HTMLLIElement;
  const img = $<HTMLImageElement>('img', item);
  img.src = url;
  img.alt = `Result: ${String(made.fields.prompt).slice(0, 120)}`;
  $<HTMLElement>('.result-params', item).textContent = describe(job, index, made);
  const download = $<HTMLAnchorElement>('.result-download', item);
  download.href = url;
  download.download = `ov-diffusion-${job.seed}-${index}.${job.output_format === 'jpeg' ? 'jpg' : job.output_format}`;
  $<HTMLButtonElement>('.result-reuse', item).addEventListener('click', () => {
    void editor.loadBlob(blob).then(() => {
      if (mode() === 'text') setMode('image');
      editorChanged();
      $<HTMLElement>('#input-image').scrollIntoView({ block: 'nearest' });
    });
  });
  $<HTMLButtonElement>('.result-seed', item).addEventListener('click', () => {
    field<HTMLInputElement>('rng_seed').value = String(job.seed);
  });
  $<HTMLUListElement>('#gallery').prepend(item);
  $<HTMLElement>('#no-results').hidden = true;
}

errorBox.tabIndex = -1;
setMode(mode());
editorChanged();
void loadModels();
