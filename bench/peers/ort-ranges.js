#!/usr/bin/env node
'use strict';
// Calibration for ONNX Runtime's int8 model (bench/peers/make_qdq.py): runs
// ONNX Runtime fp32 on calibration inputs and writes every output's min and max.
//
//   node bench/peers/ort-ranges.js MODEL.ranges.onnx -o RANGES.json CALIB.npy...
//
// MODEL.ranges.onnx is the model with its intermediate tensors exposed as
// outputs (make_qdq.py expose). Graph optimisations are off, so every exposed
// tensor is computed as the graph states it. Writes
// {"model", "inputs": [...], "ranges": {name: [min, max]}}, the graph input's
// range included.

const fs = require('fs');
const runner = require('./ort-runner');

const PROG = 'ort-ranges.js';
const USAGE = 'usage: node bench/peers/ort-ranges.js MODEL.onnx -o RANGES.json CALIB.npy...';

function parse(argv) {
  const opts = { model: null, output: null, inputs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-o' || a === '--output') {
      if (i + 1 >= argv.length) runner.fail(PROG, `${a} needs a value\n${USAGE}`, 2);
      opts.output = argv[++i];
    } else if (a === '-h' || a === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (a.startsWith('-')) runner.fail(PROG, `unknown option '${a}'\n${USAGE}`, 2);
    else if (opts.model === null) opts.model = a;
    else opts.inputs.push(a);
  }
  if (opts.model === null || opts.output === null || opts.inputs.length === 0) runner.fail(PROG, USAGE, 2);
  return opts;
}

function widen(ranges, name, data) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const r = ranges[name];
  ranges[name] = r ? [Math.min(r[0], lo), Math.max(r[1], hi)] : [lo, hi];
}

async function main() {
  const opts = parse(process.argv.slice(2));
  const ort = runner.loadOrt(PROG);
  if (!fs.existsSync(opts.model)) runner.fail(PROG, `${opts.model}: no such file`);
  let session;
  try {
    session = await ort.InferenceSession.create(opts.model, {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      graphOptimizationLevel: 'disabled',
    });
  } catch (e) {
    runner.fail(PROG, `${opts.model}: ONNX Runtime cannot load it: ${e.message}`);
  }
  if (session.inputNames.length !== 1) runner.fail(PROG, `${opts.model}: needs exactly one input`);
  const inputName = session.inputNames[0];
  const ranges = {};
  for (const file of opts.inputs) {
    const x = runner.readInput(PROG, file);
    widen(ranges, inputName, x.data);
    let out;
    try {
      out = await session.run({ [inputName]: new ort.Tensor('float32', x.data, x.shape) });
    } catch (e) {
      runner.fail(PROG, `${opts.model}: run failed on ${file}: ${e.message}`);
    }
    for (const [name, t] of Object.entries(out)) {
      if (t.type === 'float32') widen(ranges, name, t.data);
    }
  }
  fs.writeFileSync(opts.output, `${JSON.stringify({ model: opts.model, inputs: opts.inputs, ranges })}\n`);
  process.stdout.write(`${opts.model}: ranges of ${Object.keys(ranges).length} tensors over ` +
    `${opts.inputs.length} inputs -> ${opts.output}\n`);
}

main().catch((e) => runner.fail(PROG, e.stack || String(e)));
