import { binding } from './binding';

export { OvDiffusionError, ErrorCode } from './errors';
export { IrModel, Tensor, Port } from './ir-model';

/** The OpenVINO Runtime build this addon runs on, e.g. "2026.4.1-22982-...". */
export function openvinoVersion(): string {
  return binding().openvinoVersion();
}

/** OpenVINO devices available on this machine, e.g. ["CPU"]. */
export function availableDevices(): string[] {
  return binding().availableDevices();
}
