// Task-shaped facades over DiffusionModel, named after openvino-genai's pipeline classes.
import { DiffusionModel, GenerateOptions, GenerationResult, LoadOptions } from './diffusion-model';
import { ImageInput } from './images';

abstract class TaskPipeline {
  protected constructor(readonly model: DiffusionModel) {}
  /** Releases the shared model (every pipeline made from it stops working). */
  dispose(): void {
    this.model.dispose();
  }
}

export class Text2ImagePipeline extends TaskPipeline {
  static async load(modelDir: string, options?: LoadOptions): Promise<Text2ImagePipeline> {
    return new Text2ImagePipeline(await DiffusionModel.load(modelDir, options));
  }
  /** Shares the weights of an already loaded model. */
  static from(source: DiffusionModel | TaskPipeline): Text2ImagePipeline {
    return new Text2ImagePipeline(source instanceof DiffusionModel ? source : source.model);
  }
  generate(prompt: string, options?: GenerateOptions): Promise<GenerationResult> {
    return this.model.text2image(prompt, options);
  }
}

export class Image2ImagePipeline extends TaskPipeline {
  static async load(modelDir: string, options?: LoadOptions): Promise<Image2ImagePipeline> {
    return new Image2ImagePipeline(await DiffusionModel.load(modelDir, options));
  }
  static from(source: DiffusionModel | TaskPipeline): Image2ImagePipeline {
    return new Image2ImagePipeline(source instanceof DiffusionModel ? source : source.model);
  }
  generate(prompt: string, image: ImageInput, options?: GenerateOptions): Promise<GenerationResult> {
    return this.model.image2image(prompt, image, options);
  }
}

export class InpaintingPipeline extends TaskPipeline {
  static async load(modelDir: string, options?: LoadOptions): Promise<InpaintingPipeline> {
    return new InpaintingPipeline(await DiffusionModel.load(modelDir, options));
  }
  static from(source: DiffusionModel | TaskPipeline): InpaintingPipeline {
    return new InpaintingPipeline(source instanceof DiffusionModel ? source : source.model);
  }
  generate(prompt: string, image: ImageInput, mask: ImageInput, options?: GenerateOptions): Promise<GenerationResult> {
    return this.model.inpaint(prompt, image, mask, options);
  }
}
