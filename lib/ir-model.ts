import { binding, NativeIrModel, NativePort, NativeTensor, PropertyValue } from './binding';
import { OvDiffusionError, callNative } from './errors';

export type Tensor = NativeTensor;
export type Port = NativePort;

/**
 * One OpenVINO IR model, compiled once. `infer()` runs on a worker thread; several calls may run
 * at once, each on its own infer request, sharing the compiled weights.
 */
export class IrModel {
  private native: NativeIrModel | null;

  private constructor(native: NativeIrModel) {
    this.native = native;
  }

  static async load(xmlPath: string, options: { device?: string; properties?: Record<string, PropertyValue> } = {}): Promise<IrModel> {
    const native = await callNative(() => binding().IrModel.load(xmlPath, options.device ?? 'CPU', options.properties ?? {}));
    return new IrModel(native);
  }

  private handle(): NativeIrModel {
    if (!this.native) throw new OvDiffusionError('ERR_DISPOSED', 'the IrModel was disposed');
    return this.native;
  }

  infer(inputs: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    const native = this.handle();
    return callNative(() => native.infer(inputs));
  }

  get inputs(): Port[] {
    return this.handle().inputs();
  }
  get outputs(): Port[] {
    return this.handle().outputs();
  }
  get compileMs(): number {
    return this.handle().compileMs();
  }

  dispose(): void {
    this.native?.dispose();
    this.native = null;
  }
}
