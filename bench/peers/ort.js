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

const path = require('path');
const { writeNpy } = require('./npy');
const runner = require('./ort-runner');

const PROG = 'ort.js';
const USAGE = 'usage: node bench/peers/ort.js MODEL.onnx --input X.npy [--output OUT.npy] ' +
  '[--threads N] [--runs N] [--warmup N] [--json]';

function fail(message) {
  runner.fail(PROG, message);
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
  const opts = runner.parseArgs(process.argv.slice(2), {
    prog: PROG,
    usage: USAGE,
    defaults: { threads: 1, runs: 10, warmup: 2, json: false, output: null },
    extra: { '--json': 'flag', '--output': 'value' },
  });
  const input = runner.readInput(PROG, opts.input);
  const ort = runner.loadOrt(PROG);
  const { session, loadMs, feeds } = await runner.openSession(PROG, ort, opts, input);
  const outputName = session.outputNames[0];
  const { times, result } = await runner.timeRuns(PROG, session, feeds, opts);
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
  const timing = runner.timingFields(opts, loadMs, times);
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  const report = {
    peer: 'onnxruntime-node',
    version: runner.ortVersion(),
    model: opts.model,
    input: opts.input,
    input_shape: input.shape,
    output: opts.output,
    output_name: outputName,
    output_shape: outShape,
    output_std: std(out.data),
    ...timing,
    peak_rss_mb: peakRssMb,
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    process.stdout.write(
      `${path.basename(opts.model)} on ${path.basename(opts.input)}: ONNX Runtime ${report.version}, ` +
      `${opts.threads} thread(s), ${opts.runs} runs after ${opts.warmup} warm-up\n` +
      `  median ${timing.median_ms.toFixed(3)} ms  min ${timing.min_ms.toFixed(3)} ms  ` +
      `max ${timing.max_ms.toFixed(3)} ms  ` +
      `(load ${loadMs.toFixed(1)} ms)\n` +
      `  output '${outputName}' ${outShape.join('x')}, std ${report.output_std.toFixed(4)}` +
      `${opts.output ? ` -> ${opts.output}` : ''}\n` +
      `  peak RSS ${peakRssMb.toFixed(1)} MB\n`);
  }
}

main().catch((e) => fail(e.stack || String(e)));
