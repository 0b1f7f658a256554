// run.js: run an ONNX model in ONNX Runtime (CPU) on inputs stored as raw little-endian arrays, for the
// export tests (tests/test_export.c) and the deployment benchmark (bench/bench_onnx.c).
//
//   node scripts/ort/run.js MODEL DIR [--threads N] [--repeat R] [--feed OUT=IN ...]
//
// DIR/inputs.txt lists one input per line: "name type dims file" with type float32, int32 or int64, dims
// comma-separated ("2,7,1152") and file relative to DIR (the raw array). Every output is written to
// DIR/<output>.bin (raw float32) and its dims to DIR/outputs.txt ("name dims"). With --repeat R the model
// runs R more times after one warm-up and the median and minimum latency in ms are printed
// ("latency_ms median M min m"). With --windows T1,T2,... (language models) the model runs once per
// window, each on the next T_w steps of every input of 2 dims [batch, ΣT_w], each window's state outputs
// fed to the next window's inputs as --feed OUT=IN names them (truncated BPTT's carried state, as
// lstmprune lm-eval runs it); the outputs are the last window's, except `probabilities`, which holds every
// window's, concatenated along time.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const TYPES = {float32: Float32Array, int32: Int32Array, int64: BigInt64Array};

function readInputs(dir) {
  const feeds = {};
  for (const line of fs.readFileSync(path.join(dir, 'inputs.txt'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const [name, type, dimsText, file] = line.trim().split(/\s+/);
    const T = TYPES[type];
    if (!T) throw new Error(`inputs.txt: unknown type ${type}`);
    const dims = dimsText.split(',').map(Number);
    const buf = fs.readFileSync(path.join(dir, file));
    const data = new T(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    feeds[name] = new ort.Tensor(type, data, dims);
  }
  return feeds;
}

// Steps [t0, t0+t) along axis 1 of a [B, total] tensor.
function window(tensor, t0, t) {
  const [B, total] = tensor.dims;
  const T = tensor.data.constructor;
  const out = new T(B * t);
  for (let b = 0; b < B; b++) out.set(tensor.data.subarray(b * total + t0, b * total + t0 + t), b * t);
  return new ort.Tensor(tensor.type, out, [B, t]);
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 2) {
    console.error('usage: node run.js MODEL DIR [--threads N] [--repeat R] [--windows W --feed OUT=IN ...]');
    process.exit(2);
  }
  const [model, dir] = args;
  let threads = 1, repeat = 0, windows = null;
  const feedMap = {};
  for (let i = 2; i < args.length; i += 2) {
    if (args[i] === '--threads') threads = Number(args[i + 1]);
    else if (args[i] === '--repeat') repeat = Number(args[i + 1]);
    else if (args[i] === '--windows') windows = args[i + 1].split(',').map(Number);
    else if (args[i] === '--feed') {
      const [o, inp] = args[i + 1].split('=');
      feedMap[o] = inp;
    } else throw new Error(`unknown option ${args[i]}`);
  }
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const feeds = readInputs(dir);
  let results;
  if (windows) {
    const long = Object.keys(feeds).filter((k) => feeds[k].dims.length === 2);
    const total = windows.reduce((a, t) => a + t, 0);
    const probs = [];
    let state = {}, t0 = 0;
    for (const t of windows) {
      const f = Object.assign({}, feeds, state);
      for (const k of long) f[k] = window(feeds[k], t0, t);
      results = await session.run(f);
      probs.push([t0, t, results.probabilities]);
      state = {};
      for (const [o, inp] of Object.entries(feedMap)) state[inp] = results[o];
      t0 += t;
    }
    // probabilities [B, t, V] per window -> [B, total, V]
    const B = probs[0][2].dims[0], V = probs[0][2].dims[2];
    const all = new Float32Array(B * total * V);
    for (const [s0, t, p] of probs)
      for (let b = 0; b < B; b++) all.set(p.data.subarray(b * t * V, (b + 1) * t * V), (b * total + s0) * V);
    results.probabilities = new ort.Tensor('float32', all, [B, total, V]);
  } else {
    results = await session.run(feeds);
  }
  const lines = [];
  for (const name of Object.keys(results)) {
    const r = results[name];
    fs.writeFileSync(path.join(dir, `${name}.bin`), Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength));
    lines.push(`${name} ${r.dims.join(',')}`);
  }
  fs.writeFileSync(path.join(dir, 'outputs.txt'), lines.join('\n') + '\n');
  if (repeat > 0) {
    const ms = [];
    for (let k = 0; k < repeat; k++) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    ms.sort((a, b) => a - b);
    console.log(`latency_ms median ${ms[Math.floor(ms.length / 2)].toFixed(3)} min ${ms[0].toFixed(3)}`);
  }
}

main().catch((e) => {
  console.error(`run.js: ${e.message}`);
  process.exit(1);
});
