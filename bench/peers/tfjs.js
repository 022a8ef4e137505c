#!/usr/bin/env node
'use strict';
// Runs a TensorFlow.js graph model (model.json + weight shards, read from
// disk) on .npy inputs and writes the requested outputs as .npy.
//
//   node bench/peers/tfjs.js MODEL.json --input NAME=X.npy [--input ...]
//        --output NAME[,NAME...] --out-dir DIR
//        [--backend cpu|wasm] [--runs N] [--threads N]
//
// Names are graph node names ("tower_0/keypoints", "input_1"); a tensor
// suffix ":0" is accepted too. Inputs are float32 .npy (npy.js). Each output
// goes to DIR/<name>.npy with ":0" dropped and any other character outside
// [A-Za-z0-9._-] (e.g. '/') replaced by '_'; stdout says which file is which,
// one line per output, and DIR/index.json lists them with shapes and dtypes.
//
// --backend cpu (default) is TensorFlow.js's plain-JavaScript float32 kernels:
// the reference for fidelity. wasm is the XNNPACK WebAssembly backend: the fast
// one, for timing (--threads asks it for N threads, but TF.js runs its single-
// threaded SIMD build under node; the timing reports the count it got).
// --runs N times N runs of execute + dataSync of every output after the first
// run (the warm-up, whose outputs are written) and prints median and min ms
// and a JSON line, with the median process CPU time per run (user + system,
// all of node's threads): on a busy machine it stays close to the quiet wall
// time when the wall time does not.
// Install the peer first: (cd bench/peers && ONNXRUNTIME_NODE_INSTALL=skip npm ci)

const fs = require('fs');
const path = require('path');
const { readNpy, writeNpy } = require('./npy');
const runner = require('./ort-runner'); // fail() and stats() only: it loads onnxruntime-node on demand

const PROG = 'tfjs.js';
const USAGE = 'usage: node bench/peers/tfjs.js MODEL.json --input NAME=X.npy [--input ...] ' +
  '--output NAME[,NAME...] --out-dir DIR [--backend cpu|wasm] [--runs N] [--threads N]';

function fail(message) {
  runner.fail(PROG, message);
}

function positiveInt(flag, text, min) {
  if (!/^\d+$/.test(text || '') || Number(text) < min) fail(`${flag} needs an integer >= ${min}, got '${text}'`);
  return Number(text);
}

function parseArgs(argv) {
  const opts = { model: null, inputs: [], outputs: [], outDir: null, backend: 'cpu', runs: 0, threads: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${a} needs a value\n${USAGE}`);
      return argv[++i];
    };
    if (a === '-h' || a === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (a === '--input') {
      const v = value();
      const eq = v.lastIndexOf('=');
      if (eq <= 0 || eq === v.length - 1) fail(`--input wants NAME=FILE.npy, got '${v}'`);
      opts.inputs.push({ name: v.slice(0, eq), file: v.slice(eq + 1) });
    } else if (a === '--output') {
      opts.outputs.push(...value().split(',').filter((s) => s.length > 0));
    } else if (a === '--out-dir') {
      opts.outDir = value();
    } else if (a === '--backend') {
      opts.backend = value();
      if (!['cpu', 'wasm'].includes(opts.backend)) fail(`--backend is cpu or wasm, got '${opts.backend}'`);
    } else if (a === '--runs') {
      opts.runs = positiveInt(a, value(), 0);
    } else if (a === '--threads') {
      opts.threads = positiveInt(a, value(), 1);
    } else if (a.startsWith('-')) {
      fail(`unknown option '${a}'\n${USAGE}`);
    } else if (opts.model === null) {
      opts.model = a;
    } else {
      fail(`more than one model given ('${opts.model}', '${a}')\n${USAGE}`);
    }
  }
  if (!opts.model) fail(`no MODEL.json given\n${USAGE}`);
  if (opts.inputs.length === 0) fail(`no --input given\n${USAGE}`);
  if (opts.outputs.length === 0) fail(`no --output given\n${USAGE}`);
  if (!opts.outDir) fail(`no --out-dir given\n${USAGE}`);
  return opts;
}

function loadTf(backend) {
  // tfjs prints an advert for tfjs-node when a backend starts under node: drop it.
  const warn = console.warn;
  console.warn = (...args) => {
    if (!String(args[0]).includes('tfjs-node')) warn(...args);
  };
  try {
    const tf = require('@tensorflow/tfjs');
    const wasm = backend === 'wasm' ? require('@tensorflow/tfjs-backend-wasm') : null;
    return { tf, wasm };
  } catch (e) {
    return fail(`cannot load TensorFlow.js (${e.message}); install it with: ` +
      '(cd bench/peers && ONNXRUNTIME_NODE_INSTALL=skip npm ci)');
  }
}

function readJson(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    return fail(`cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    return fail(`${file}: not JSON (${e.message})`);
  }
}

/** An IOHandler that reads model.json and the shards its weightsManifest names from the model's directory. */
function fileHandler(tf, modelPath, modelJson) {
  const dir = path.dirname(modelPath);
  const loadWeights = async (manifest) => {
    const specs = [];
    const shards = [];
    for (const group of manifest) {
      for (const shard of group.paths) {
        const file = path.join(dir, shard);
        if (!fs.existsSync(file)) fail(`${modelPath}: weight shard '${shard}' is missing (looked for ${file})`);
        shards.push(fs.readFileSync(file));
      }
      specs.push(...group.weights);
    }
    const all = Buffer.concat(shards);
    return [specs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)];
  };
  return { load: () => tf.io.getModelArtifactsForJSON(modelJson, loadWeights) };
}

/** Node name without a ":N" tensor suffix (":0" is the only one accepted). */
function nodeName(name) {
  const m = /^(.*):(\d+)$/.exec(name);
  if (!m) return name;
  if (m[2] !== '0') fail(`'${name}': only output 0 of a node can be named (${m[1]} or ${m[1]}:0)`);
  return m[1];
}

function fileNameFor(name) {
  return `${nodeName(name).replace(/[^A-Za-z0-9._-]/g, '_')}.npy`;
}

/** Checks the names and input shapes against the graph before TensorFlow.js sees them. */
function checkGraph(modelPath, modelJson, opts, feeds) {
  const nodes = (modelJson.modelTopology && modelJson.modelTopology.node) || [];
  if (nodes.length === 0) fail(`${modelPath}: no modelTopology.node: not a TensorFlow.js graph model`);
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const placeholders = nodes.filter((n) => n.op === 'Placeholder');
  const shapeOf = (n) => ((n.attr && n.attr.shape && n.attr.shape.shape && n.attr.shape.shape.dim) ||
    (n.attr && n.attr.shape && n.attr.shape.dim) || []).map((d) => Number(d.size === undefined ? -1 : d.size));
  const describe = (n) => `${n.name} [${shapeOf(n).join(',')}]`;
  for (const { name, file } of opts.inputs) {
    const node = byName.get(nodeName(name));
    if (!node || node.op !== 'Placeholder') {
      fail(`${modelPath}: no input named '${name}'; the inputs are: ${placeholders.map(describe).join(', ')}`);
    }
    const want = shapeOf(node);
    const got = feeds[name].shape;
    const fits = want.length === got.length && want.every((d, i) => d < 0 || d === got[i]);
    if (want.length > 0 && !fits) {
      fail(`${file}: shape [${got.join(',')}] does not fit input ${describe(node)} (-1 is any size)`);
    }
  }
  const missing = placeholders.filter((n) => !opts.inputs.some((i) => nodeName(i.name) === n.name));
  if (missing.length > 0) fail(`${modelPath}: no --input for ${missing.map(describe).join(', ')}`);
  const consumed = new Set();
  for (const n of nodes) for (const i of n.input || []) consumed.add(i.replace(/^\^/, '').split(':')[0]);
  const sinks = nodes.filter((n) => !consumed.has(n.name) && n.op !== 'Const').map((n) => n.name);
  const files = new Map();
  for (const name of opts.outputs) {
    const node = byName.get(nodeName(name));
    if (!node || node.op === 'Const') {
      fail(`${modelPath}: no output node named '${name}'; the graph's final nodes are: ${sinks.join(', ')}`);
    }
    const file = fileNameFor(name);
    if (files.has(file)) fail(`outputs '${files.get(file)}' and '${name}' would both be written to ${file}`);
    files.set(file, name);
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const modelJson = readJson(opts.model);
  const feedsNpy = {};
  for (const { name, file } of opts.inputs) {
    if (!fs.existsSync(file)) fail(`input ${name}: ${file}: no such file`);
    try {
      feedsNpy[name] = readNpy(file);
    } catch (e) {
      fail(e.message);
    }
  }
  checkGraph(opts.model, modelJson, opts, feedsNpy);

  const { tf, wasm } = loadTf(opts.backend);
  if (wasm) wasm.setThreadsCount(opts.threads);
  if (!(await tf.setBackend(opts.backend))) fail(`TensorFlow.js backend '${opts.backend}' failed to start`);
  await tf.ready();
  const threads = wasm ? wasm.getThreadsCount() : 1;

  const t0 = performance.now();
  const model = await tf.loadGraphModel(fileHandler(tf, opts.model, modelJson));
  const loadMs = performance.now() - t0;
  const feeds = {};
  for (const [name, { data, shape }] of Object.entries(feedsNpy)) feeds[nodeName(name)] = tf.tensor(data, shape, 'float32');
  const outputNames = opts.outputs.map(nodeName);

  const run = () => {
    const out = model.execute(feeds, outputNames);
    return Array.isArray(out) ? out : [out];
  };
  let outs;
  try {
    outs = run();
  } catch (e) {
    fail(`${opts.model}: execute failed: ${e.message}`);
  }

  fs.mkdirSync(opts.outDir, { recursive: true });
  const index = [];
  outs.forEach((t, i) => {
    const name = opts.outputs[i];
    const file = path.join(opts.outDir, fileNameFor(name));
    let data = t.dataSync();
    if (t.dtype === 'bool') data = Uint8Array.from(data);
    writeNpy(file, data, t.shape);
    index.push({ name, file: path.basename(file), shape: t.shape, dtype: t.dtype });
    process.stdout.write(`output ${name} -> ${file} [${t.shape.join(',')}] ${t.dtype}\n`);
  });
  tf.dispose(outs);
  fs.writeFileSync(path.join(opts.outDir, 'index.json'), `${JSON.stringify({
    model: opts.model, backend: opts.backend, tfjs: tf.version.tfjs,
    inputs: opts.inputs, outputs: index,
  }, null, 1)}\n`);

  if (opts.runs > 0) {
    const times = [];
    const cpuTimes = [];
    for (let r = 0; r < opts.runs; r++) {
      const start = performance.now();
      const cpuStart = process.cpuUsage();
      const o = run();
      for (const t of o) t.dataSync();
      const cpu = process.cpuUsage(cpuStart);
      times.push(performance.now() - start);
      cpuTimes.push((cpu.user + cpu.system) / 1000);
      tf.dispose(o);
    }
    const t = runner.stats(times);
    const report = {
      model: path.basename(opts.model), backend: opts.backend, threads, runs: opts.runs,
      median_ms: +t.median.toFixed(3), min_ms: +t.min.toFixed(3), max_ms: +t.max.toFixed(3),
      cpu_median_ms: +runner.stats(cpuTimes).median.toFixed(1), load_ms: +loadMs.toFixed(1),
    };
    process.stdout.write(`${report.model} ${opts.backend} (${threads} thread${threads > 1 ? 's' : ''}): ` +
      `median ${report.median_ms.toFixed(2)} ms, min ${report.min_ms.toFixed(2)} ms over ${opts.runs} runs ` +
      `(process CPU time per run: median ${report.cpu_median_ms} ms)\n`);
    process.stdout.write(`${JSON.stringify(report)}\n`);
  }
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
