'use strict';
// Input files for the image-to-image and inpainting runs.
const fs = require('fs');
const path = require('path');

/** A deterministic input picture and a centred rectangular mask (raw RGB u8 files) for the edit cases. */
function writeInputs(dir, width, height) {
  fs.mkdirSync(dir, { recursive: true });
  const image = Buffer.alloc(width * height * 3);
  const mask = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const i = (y * width + x) * 3;
      image[i] = Math.round(127 + 120 * Math.sin(x / 23) * Math.cos(y / 31));
      image[i + 1] = Math.round((255 * x) / width);
      image[i + 2] = Math.round((255 * y) / height);
      const inside = x >= width / 4 && x < (3 * width) / 4 && y >= height / 4 && y < (3 * height) / 4;
      mask.fill(inside ? 255 : 0, i, i + 3);
    }
  }
  const files = {
    image: path.join(dir, `image-${width}x${height}.rgb`),
    mask: path.join(dir, `mask-${width}x${height}.rgb`),
    width,
    height,
  };
  fs.writeFileSync(files.image, image);
  fs.writeFileSync(files.mask, mask);
  return files;
}

module.exports = { writeInputs };
