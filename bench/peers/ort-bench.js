#!/usr/bin/env node
'use strict';
// ONNX Runtime's side of `huddle bench`: times one inference of an ONNX model
// (CPU, onnxruntime-node) on one float32 .npy input and prints one JSON line
// whose fields are named as huddle bench --json names them.
//
//   node bench/peers/ort-bench.js MODEL.onnx --input X.npy [--threads N] [--runs N] [--warmup N] [--json]
//
// --threads sets intraOpNumThreads (default 1; inter-op 1, sequential, graph
// optimisation 'all'). Defaults as huddle bench: 50 runs after 5 warm-up.
// median_ms, min_ms, max_ms: wall clock per session.run; load_ms: session
// creation; peak_rss_kib: the process's maxRSS (process.resourceUsage()), which
// includes node itself: baseline_rss_kib is the maxRSS before onnxruntime-node
// was loaded; times_ms: every timed run, in order.
// Install the peer first: (cd bench/peers && ONNXRUNTIME_NODE_INSTALL=skip npm ci)

const fs = require('fs');
const runner = require('./ort-runner');

const PROG = 'ort-bench.js';
const USAGE = 'usage: node bench/peers/ort-bench.js MODEL.onnx --input X.npy ' +
  '[--threads N] [--runs N] [--warmup N] [--json]';

async function main() {
  const opts = runner.parseArgs(process.argv.slice(2), {
    prog: PROG,
    usage: USAGE,
    defaults: { threads: 1, runs: 50, warmup: 5 },
    extra: { '--json': 'flag' },  // accepted as huddle bench takes it; the output is JSON anyway
  });
  const input = runner.readInput(PROG, opts.input);
  const baselineRssKib = process.resourceUsage().maxRSS;
  const ort = runner.loadOrt(PROG);
  const { session, loadMs, feeds } = await runner.openSession(PROG, ort, opts, input);
  const { times } = await runner.timeRuns(PROG, session, feeds, opts);
  const report = {
    engine: 'onnxruntime-node',
    version: runner.ortVersion(),
    model: opts.model,
    model_bytes: fs.statSync(opts.model).size,
    input: opts.input,
    input_shape: input.shape,
    ...runner.timingFields(opts, loadMs, times),
    peak_rss_kib: process.resourceUsage().maxRSS,
    baseline_rss_kib: baselineRssKib,
    times_ms: times,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((e) => runner.fail(PROG, e.stack || String(e)));
