'use strict';
// Renders the Mandelbrot set in horizontal bands that run in parallel, and
// prints a small ASCII preview.  Runs under Node
// (`node examples/mandelbrot.js [width height]`) and under the CLI shell
// (`out/threader examples/mandelbrot.js`), where `threader` and `thread` are
// globals and only console.log exists.
//
// It times the same image on 1 worker and on all workers and prints the
// speedup.

const { threader, thread } = typeof require === 'function' ? require('..') : globalThis;

const now = typeof performance === 'object' && performance !== null &&
  typeof performance.now === 'function' ? () => performance.now() : () => Date.now();

const args = typeof process === 'object' ? process.argv.slice(2).map(Number) : [];
const WIDTH = args[0] || 1600;
const HEIGHT = args[1] || 1000;
const MAX_ITER = 500;
const BANDS = 50;

// Runs in a worker: escape-time iteration counts for rows [y0, y1).
function band(job, ctx) {
  const { width, height, y0, y1, maxIter } = job;
  const out = new Uint16Array(width * (y1 - y0));
  for (let y = y0; y < y1; y++) {
    const ci = (y / height) * 2.4 - 1.2;
    for (let x = 0; x < width; x++) {
      const cr = (x / width) * 3.5 - 2.5;
      let zr = 0;
      let zi = 0;
      let i = 0;
      while (i < maxIter && zr * zr + zi * zi <= 4) {
        const t = zr * zr - zi * zi + cr;
        zi = 2 * zr * zi + ci;
        zr = t;
        i++;
      }
      out[(y - y0) * width + x] = i;
    }
  }
  return ctx.transfer(out, [out.buffer]);
}

function jobs() {
  const list = [];
  const rows = Math.ceil(HEIGHT / BANDS);
  for (let y0 = 0; y0 < HEIGHT; y0 += rows) {
    list.push({ width: WIDTH, height: HEIGHT, y0, y1: Math.min(HEIGHT, y0 + rows), maxIter: MAX_ITER });
  }
  return list;
}

async function render() {
  const t0 = now();
  const parts = await thread.all(jobs().map((j) => threader(band, j)));
  const image = new Uint16Array(WIDTH * HEIGHT);
  let offset = 0;
  for (const part of parts) {
    image.set(part, offset);
    offset += part.length;
  }
  return { ms: now() - t0, image };
}

function checksum(image) {
  let sum = 0;
  for (let i = 0; i < image.length; i++) sum = (sum * 31 + image[i]) >>> 0;
  return sum;
}

function preview(image, cols = 64, rows = 20) {
  const shades = ' .:-=+*#%@';
  const lines = [];
  for (let r = 0; r < rows; r++) {
    let line = '';
    const y = Math.floor((r + 0.5) * HEIGHT / rows);
    for (let c = 0; c < cols; c++) {
      const x = Math.floor((c + 0.5) * WIDTH / cols);
      const it = image[y * WIDTH + x];
      line += it >= MAX_ITER ? '@' : shades[Math.min(shades.length - 2, Math.floor(Math.sqrt(it / MAX_ITER) * (shades.length - 1)))];
    }
    lines.push(line);
  }
  return lines.join('\n');
}

async function main() {
  const workers = threader.config().maxWorkers;
  await thread.all(threader((x) => x, 0));  // warm the pool

  threader.config({ maxWorkers: 1 });
  const one = await render();
  threader.config({ maxWorkers: null });
  await thread.all(jobs().slice(0, 4).map((j) => threader((x) => x.y0, j)));
  const all = await render();

  if (checksum(one.image) !== checksum(all.image)) throw new Error('the two renders differ');
  console.log(preview(all.image));
  console.log(`mandelbrot ${WIDTH}x${HEIGHT}, ${MAX_ITER} iterations, ${BANDS} bands, checksum ${checksum(all.image)}`);
  console.log(`1 worker: ${one.ms.toFixed(1)} ms`);
  console.log(`${workers === null ? 'all' : workers} workers: ${all.ms.toFixed(1)} ms`);
  console.log(`speedup: ${(one.ms / all.ms).toFixed(2)}x`);
}

main().catch((err) => {
  console.log(`mandelbrot failed: ${err && err.stack ? err.stack : err}`);
  if (typeof process === 'object') process.exitCode = 1;
});
