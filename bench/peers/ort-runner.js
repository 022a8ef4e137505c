'use strict';
// What ort.js and ort-bench.js share: their command line, loading
// onnxruntime-node, opening a session with the thread settings huddle is
// compared under, and timing runs on one float32 .npy input.

const fs = require('fs');
const path = require('path');
const { readNpy, NpyError } = require('./npy');

/** Prints "PROG: MESSAGE" to stderr and exits with `code`. */
function fail(prog, message, code = 1) {
  process.stderr.write(`${prog}: ${message}\n`);
  process.exit(code);
}

/**
 * Parses MODEL.onnx --input X.npy [--threads N] [--runs N] [--warmup N] and the
 * flags in `extra` ({'--json': 'flag', '--output': 'value'}). `defaults` gives
 * threads, runs and warmup. A usage error exits with status 2.
 */
function parseArgs(argv, { prog, usage, defaults, extra = {} }) {
  const opts = { ...defaults, input: null, model: null };
  const integer = (flag, value, min) => {
    if (value === undefined || !/^\d+$/.test(value) || Number(value) < min) {
      const got = value === undefined ? '' : value;
      fail(prog, `${flag} needs an integer >= ${min}, got '${got}'\n${usage}`, 2);
    }
    return Number(value);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(prog, `${a} needs a value\n${usage}`, 2);
      return argv[++i];
    };
    if (a === '--input') opts.input = value();
    else if (a === '--threads') opts.threads = integer(a, value(), 1);
    else if (a === '--runs') opts.runs = integer(a, value(), 1);
    else if (a === '--warmup') opts.warmup = integer(a, value(), 0);
    else if (extra[a] === 'flag') opts[a.slice(2)] = true;
    else if (extra[a] === 'value') opts[a.slice(2)] = value();
    else if (a === '-h' || a === '--help') {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    } else if (a.startsWith('-')) fail(prog, `unknown option '${a}'\n${usage}`, 2);
    else if (opts.model === null) opts.model = a;
    else fail(prog, `unexpected argument '${a}'\n${usage}`, 2);
  }
  if (opts.model === null) fail(prog, `no model given\n${usage}`, 2);
  if (opts.input === null) fail(prog, `no --input given\n${usage}`, 2);
  return opts;
}

/** The .npy input ({data, shape}); a missing or unreadable file exits with status 1. */
function readInput(prog, file) {
  try {
    return readNpy(file);
  } catch (e) {
    if (e instanceof NpyError || e.code === 'ENOENT') fail(prog, e.message);
    throw e;
  }
}

/** The onnxruntime-node module; if it is not installed, says how to install it and exits. */
function loadOrt(prog) {
  try {
    return require('onnxruntime-node');
  } catch (e) {
    fail(prog, `cannot load onnxruntime-node (${e.message.split('\n')[0]}).\n` +
      `Install it: (cd ${path.relative(process.cwd(), __dirname) || '.'} && ` +
      'ONNXRUNTIME_NODE_INSTALL=skip npm ci)   or run scripts/models');
  }
  return null;
}

/** The installed onnxruntime-node's version. */
function ortVersion() {
  try {
    const pkg = path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'package.json');
    return JSON.parse(fs.readFileSync(pkg, 'utf8')).version;
  } catch (e) {
    return 'unknown';
  }
}

/**
 * Opens `opts.model` on the CPU with `opts.threads` intra-op threads (inter-op
 * 1, sequential, all graph optimisations) for one float32 input. Returns
 * {session, loadMs (session creation), feeds}.
 */
async function openSession(prog, ort, opts, input) {
  if (!fs.existsSync(opts.model)) fail(prog, `${opts.model}: no such file`);
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
    fail(prog, `${opts.model}: ONNX Runtime cannot load it: ${e.message}`);
  }
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (session.inputNames.length !== 1) {
    fail(prog, `${opts.model}: has ${session.inputNames.length} inputs (${session.inputNames.join(', ')}); ` +
      'this runner feeds exactly one');
  }
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input.data, input.shape) };
  return { session, loadMs, feeds };
}

/**
 * Runs the session `opts.warmup` times, then times `opts.runs` runs (wall clock
 * per session.run). Returns {times (ms), result (the last run's outputs)}.
 */
async function timeRuns(prog, session, feeds, opts) {
  const run = async () => {
    try {
      return await session.run(feeds);
    } catch (e) {
      const shape = Object.values(feeds)[0].dims.join('x');
      fail(prog, `${opts.model}: run failed on ${opts.input} (shape ${shape}): ${e.message}`);
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
  return { times, result };
}

/** {median, min, max} of `times`. */
function stats(times) {
  const s = [...times].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1] };
}

/** The timing fields of a report, named as huddle bench --json names them. */
function timingFields(opts, loadMs, times) {
  const t = stats(times);
  return {
    threads: opts.threads,
    warmup: opts.warmup,
    runs: opts.runs,
    load_ms: loadMs,
    median_ms: t.median,
    min_ms: t.min,
    max_ms: t.max,
  };
}

module.exports = { fail, parseArgs, readInput, loadOrt, ortVersion, openSession, timeRuns, timingFields, stats };
