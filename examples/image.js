'use strict';
// Data parallelism over a typed array: an RGBA "image" is split into bands of
// rows, each band is blurred (a box blur) and turned to grayscale by its own
// task, and the results are stitched back together.
//
//   node examples/image.js [width height radius]
//
// Each band travels with a halo of `radius` rows above and below, so the
// stitched image equals the one computed serially, which is checked.  Input
// bands are sliced copies moved to the workers (opts.transfer); results come
// back with ctx.transfer, so no band is copied twice.

const { threader, thread } = require('..');
const os = require('node:os');

const [WIDTH = 2400, HEIGHT = 1600, RADIUS = 3] = process.argv.slice(2).map(Number);

// Runs in a worker: blur rows [top, top + rows) of `band`, whose first
// `above` rows are halo, then convert to gray.  Returns RGBA bytes.
function blurGray(job, ctx) {
  const { pixels, width, rows, above, radius } = job;
  const totalRows = pixels.length / (width * 4);
  const out = new Uint8ClampedArray(width * rows * 4);
  for (let y = 0; y < rows; y++) {
    const sy = y + above;
    const y0 = Math.max(0, sy - radius);
    const y1 = Math.min(totalRows - 1, sy + radius);
    for (let x = 0; x < width; x++) {
      const x0 = Math.max(0, x - radius);
      const x1 = Math.min(width - 1, x + radius);
      let r = 0;
      let g = 0;
      let b = 0;
      for (let yy = y0; yy <= y1; yy++) {
        let i = (yy * width + x0) * 4;
        for (let xx = x0; xx <= x1; xx++, i += 4) {
          r += pixels[i];
          g += pixels[i + 1];
          b += pixels[i + 2];
        }
      }
      const n = (y1 - y0 + 1) * (x1 - x0 + 1);
      const gray = (0.299 * r + 0.587 * g + 0.114 * b) / n;
      const o = (y * width + x) * 4;
      out[o] = gray;
      out[o + 1] = gray;
      out[o + 2] = gray;
      out[o + 3] = pixels[(sy * width + x) * 4 + 3];
    }
    if (y % 32 === 0) ctx.progress(y / rows);
  }
  return ctx.transfer(out, [out.buffer]);
}

function makeImage(width, height) {
  const img = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      img[i] = (x * 255) / width;
      img[i + 1] = (y * 255) / height;
      img[i + 2] = ((x ^ y) & 0xff);
      img[i + 3] = 255;
    }
  }
  return img;
}

function band(img, width, height, top, rows, radius) {
  const from = Math.max(0, top - radius);
  const to = Math.min(height, top + rows + radius);
  // slice(), not subarray(): each band gets its own buffer to move.
  const pixels = img.slice(from * width * 4, to * width * 4);
  return { pixels, width, rows, above: top - from, radius };
}

async function main() {
  const img = makeImage(WIDTH, HEIGHT);
  const workers = threader.config().maxWorkers || os.availableParallelism();
  const bands = workers * 4;
  const rowsPer = Math.ceil(HEIGHT / bands);
  console.log(`image ${WIDTH}x${HEIGHT} RGBA, box blur radius ${RADIUS} + grayscale, ` +
              `${bands} bands on ${workers} workers`);

  // Serial reference, in this thread.
  let t0 = performance.now();
  const fakeCtx = { progress() {}, cancelled: false, transfer: (v) => v };
  const serial = blurGray(band(img, WIDTH, HEIGHT, 0, HEIGHT, RADIUS), fakeCtx);
  const serialMs = performance.now() - t0;

  await thread.all(threader((x) => x, 0));  // start the pool before timing

  t0 = performance.now();
  const tasks = [];
  for (let top = 0; top < HEIGHT; top += rowsPer) {
    const job = band(img, WIDTH, HEIGHT, top, Math.min(rowsPer, HEIGHT - top), RADIUS);
    tasks.push(threader(blurGray, job, { transfer: [job.pixels.buffer] }));
  }
  const parts = await thread.all(tasks);
  const result = new Uint8ClampedArray(WIDTH * HEIGHT * 4);
  let offset = 0;
  for (const part of parts) {
    result.set(part, offset);
    offset += part.length;
  }
  const parallelMs = performance.now() - t0;

  let same = result.length === serial.length;
  for (let i = 0; same && i < result.length; i++) same = result[i] === serial[i];
  console.log(`serial (main thread): ${serialMs.toFixed(1)} ms`);
  console.log(`parallel (${tasks.length} tasks):   ${parallelMs.toFixed(1)} ms, split + stitch included`);
  console.log(`speedup: ${(serialMs / parallelMs).toFixed(2)}x, identical output: ${same ? 'yes' : 'NO'}`);
  if (!same) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
