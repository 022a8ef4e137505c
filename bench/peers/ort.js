#!/usr/bin/env node
'use strict';
// Runs an ONNX model on ONNX Runtime (CPU, onnxruntime-node) with one .npy input,
// writes the first output as .npy and reports the time per inference.
//
//   node bench/peers/ort.js MODEL.onnx --input X.npy [--output OUT.npy]
//        [--threads N] [--runs N] [--warmup N] [--json]
//
// --threads sets intraOpNumThreads (default 1; inter-op 1, sequential).
// Times are wall-clock per session.run over --runs runs (default 10) after
// --warmup runs (default 2): median, min, max in ms. Peak RSS is the process's
// maxRSS (process.resourceUsage()), which includes node itself (~40 MB).
// Install the peer first: (cd bench/peers && ONNXRUNTIME_NODE_INSTALL=skip npm ci)

const fs = require('fs');
const path = require('path');
const { readNpy, writeNpy, NpyError } = require('./npy');

const USAGE = 'usage: node bench/peers/ort.js MODEL.onnx --input X.npy [--output OUT.npy] ' +
  '[--threads N] [--runs N] [--warmup N] [--json]';

function fail(message, code = 1) {
  process.stderr.write(`ort.js: ${message}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const opts = { threads: 1, runs: 10, warmup: 2, json: false, input: null, output: null, model: null };
  const integer = (flag, value, min) => {
    if (value === undefined || !/^\d+$/.test(value) || Number(value) < min) {
      fail(`${flag} needs an integer >= ${min}, got '${value === undefined ? '' : value}'\n${USAGE}`, 2);
    }
    return Number(value);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${a} needs a value\n${USAGE}`, 2);
      return argv[++i];
    };
    if (a === '--input') opts.input = value();
    else if (a === '--output') opts.output = value();
    else if (a === '--threads') opts.threads = integer(a, value(), 1);
    else if (a === '--runs') opts.runs = integer(a, value(), 1);
    else if (a === '--warmup') opts.warmup = integer(a, value(), 0);
    else if (a === '--json') opts.json = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (a.startsWith('-')) fail(`unknown option '${a}'\n${USAGE}`, 2);
    else if (opts.model === null) opts.model = a;
    else fail(`unexpected argument '${a}'\n${USAGE}`, 2);
  }
  if (opts.model === null) fail(`no model given\n${USAGE}`, 2);
  if (opts.input === null) fail(`no --input given\n${USAGE}`, 2);
  return opts;
}

function loadOrt() {
  try {
    return require('onnxruntime-node');
  } catch (e) {
    fail(`cannot load onnxruntime-node (${e.message.split('\n')[0]}).\n` +
      `Install it: (cd ${path.relative(process.cwd(), __dirname) || '.'} && ` +
      'ONNXRUNTIME_NODE_INSTALL=skip npm ci)   or run scripts/models');
  }
  return null;
}

function ortVersion() {
  try {
    const pkg = path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'package.json');
    return JSON.parse(fs.readFileSync(pkg, 'utf8')).version;
  } catch (e) {
    return 'unknown';
  }
}

function stats(times) {
  const s = [...times].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1] };
}

function std(data) {
  let mean = 0;
  for (const v of data) mean += v;
  mean /= data.length;
  let sq = 0;
  for (const v of data) sq += (v - mean) * (v - mean);
  return Math.sqrt(sq / data.length);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(opts.model)) fail(`${opts.model}: no such file`);
  let input;
  try {
    input = readNpy(opts.input);
  } catch (e) {
    if (e instanceof NpyError || e.code === 'ENOENT') fail(e.message);
    throw e;
  }
  const ort = loadOrt();

  const t0 = process.hrtime.bigint();
  let session;
  try {
    session = await ort.InferenceSession.create(opts.model, {
      executionProviders: ['cpu'],
      intraOpNumThreads: opts.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (e) {
    fail(`${opts.model}: ONNX Runtime cannot load it: ${e.message}`);
  }
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (session.inputNames.length !== 1) {
    fail(`${opts.model}: has ${session.inputNames.length} inputs (${session.inputNames.join(', ')}); ` +
      'this runner feeds exactly one');
  }
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  const feeds = { [inputName]: new ort.Tensor('float32', input.data, input.shape) };

  const run = async () => {
    try {
      return await session.run(feeds);
    } catch (e) {
      fail(`${opts.model}: run failed on ${opts.input} (shape ${input.shape.join('x')}): ${e.message}`);
    }
    return null;
  };
  for (let i = 0; i < opts.warmup; i++) await run();
  const times = [];
  let result = null;
  for (let i = 0; i < opts.runs; i++) {
    const start = process.hrtime.bigint();
    result = await run();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const out = result[outputName];
  if (out.type !== 'float32') fail(`${opts.model}: output '${outputName}' is ${out.type}; only float32 is written`);
  const outShape = out.dims.map(Number);
  if (opts.output) {
    try {
      writeNpy(opts.output, out.data, outShape);
    } catch (e) {
      fail(e.message);
    }
  }
  const t = stats(times);
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  const report = {
    peer: 'onnxruntime-node',
    version: ortVersion(),
    model: opts.model,
    input: opts.input,
    input_shape: input.shape,
    output: opts.output,
    output_name: outputName,
    output_shape: outShape,
    output_std: std(out.data),
    threads: opts.threads,
    warmup: opts.warmup,
    runs: opts.runs,
    load_ms: loadMs,
    median_ms: t.median,
    min_ms: t.min,
    max_ms: t.max,
    peak_rss_mb: peakRssMb,
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    process.stdout.write(
      `${path.basename(opts.model)} on ${path.basename(opts.input)}: ONNX Runtime ${report.version}, ` +
      `${opts.threads} thread(s), ${opts.runs} runs after ${opts.warmup} warm-up\n` +
      `  median ${t.median.toFixed(3)} ms  min ${t.min.toFixed(3)} ms  max ${t.max.toFixed(3)} ms  ` +
      `(load ${loadMs.toFixed(1)} ms)\n` +
      `  output '${outputName}' ${outShape.join('x')}, std ${report.output_std.toFixed(4)}` +
      `${opts.output ? ` -> ${opts.output}` : ''}\n` +
      `  peak RSS ${peakRssMb.toFixed(1)} MB\n`);
  }
}

main().catch((e) => fail(e.stack || String(e)));
