// ONNX Runtime (npm onnxruntime-node) beside mpq: the reference for logits and for speed.
//
//   node ort.js run MODEL INPUT.f32 N,C,H,W OUTPUT.f32   logits of raw float32 input
//   node ort.js bench MODEL N,C,H,W SECONDS THREADS      throughput on random input, JSON
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function dims(text) { return text.split(',').map(Number); }

async function session(model, threads) {
  return ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
}

async function run(model, inputPath, shape, outputPath) {
  const s = await session(model, 2);
  const buf = fs.readFileSync(inputPath);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const d = dims(shape);
  const per = d.slice(1).reduce((a, b) => a * b, 1);
  const chunk = 64;  // images per run: bounded memory for large sets
  const parts = [];
  let outDims = null;
  for (let n = 0; n < d[0]; n += chunk) {
    const m = Math.min(chunk, d[0] - n);
    const x = new ort.Tensor('float32', data.subarray(n * per, (n + m) * per), [m, ...d.slice(1)]);
    const y = (await s.run({ [s.inputNames[0]]: x }))[s.outputNames[0]];
    parts.push(Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
    outDims = [d[0], ...y.dims.slice(1)];
  }
  fs.writeFileSync(outputPath, Buffer.concat(parts));
  console.log(JSON.stringify({ output: s.outputNames[0], dims: outDims }));
}

async function bench(model, shape, seconds, threads) {
  const s = await session(model, Number(threads));
  const d = dims(shape);
  const data = new Float32Array(d.reduce((a, b) => a * b, 1)).map(() => Math.random());
  const feeds = { [s.inputNames[0]]: new ort.Tensor('float32', data, d) };
  for (let i = 0; i < 3; ++i) await s.run(feeds);  // warm-up
  let runs = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < Number(seconds) || runs < 5) {
    await s.run(feeds);
    ++runs;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  console.log(JSON.stringify({
    runtime: 'onnxruntime ' + require('onnxruntime-node/package.json').version,
    batch: d[0], runs, seconds: elapsed,
    ms_per_batch: 1000 * elapsed / runs, images_per_second: d[0] * runs / elapsed,
  }));
}

const [cmd, ...args] = process.argv.slice(2);
const main = cmd === 'run' ? run : cmd === 'bench' ? bench : null;
if (!main) {
  console.error('usage: node ort.js run MODEL INPUT.f32 N,C,H,W OUTPUT.f32 | bench MODEL N,C,H,W SECONDS THREADS');
  process.exit(2);
}
main(...args).catch((e) => { console.error('ort.js: ' + e.message); process.exit(1); });
