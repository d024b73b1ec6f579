#!/usr/bin/env node
// Load benchmark for `qvl serve` (issue #12): N concurrent streaming clients through the official `openai`
// package; prints one JSON object with aggregate tokens/s, per-client TTFT and inter-token gaps.
//
// Needs the test clients installed: sh tests/server_js/setup.sh (puts openai into tests/server_js/node_modules).
//
//   # against a running server
//   node bench/server_load.mjs --url http://127.0.0.1:8080 --clients 4 --requests 2 --max-tokens 128
//   # the comparison: 1 client, then 4 clients, against the same -np 4 server; reports the ratio
//   node bench/server_load.mjs --url http://127.0.0.1:8080 --compare --clients 4
//   # or let the script start (and stop) the server itself
//   node bench/server_load.mjs --qvl build/tools/qvl/qvl --model /path/to/synth-4b-q4_k --np 4 --threads 2 --compare
//
// Options: --url URL | --qvl BIN --model DIR [--np N] [--threads T] [--serve-arg ARG ...];
//   --clients N (4), --requests R per client (2), --max-tokens M (128), --temperature X (0),
//   --prompt TEXT, --image PATH (sent as a base64 data URI with every request), --api-key KEY,
//   --warmup 0|1 (1: one untimed request first), --compare, --timeout-s S per request (600),
//   --shared-prompt (every request the same text; by default each starts with its own tag, so that no
//   request reuses another's cached prefix).
//
// Measured on the client: TTFT = request sent -> first text chunk; inter-token gap = time between text
// chunks (a chunk holds whole UTF-8 characters, so a rare chunk carries more than one token);
// tokens = usage.completion_tokens (stream_options.include_usage), aggregate tokens/s = all completion
// tokens / wall time from the first request sent to the last stream closed; TTFT overhead = client TTFT
// minus the server's own TTFT, queue_ms + prompt_ms of the `timings` qvl serve adds to the usage chunk
// (counted from the engine submit, image encoding included): HTTP, JSON, template, image decoding. Each client sends its requests
// one after another. No timing is asserted: this is a measurement, not a test.
import fs from 'node:fs';
import { parseArgs } from 'node:util';

const here = new URL('.', import.meta.url);
const clientsDir = new URL('../tests/server_js/', here);
let OpenAI, startServer;
try {
  OpenAI = (await import(new URL('node_modules/openai/index.mjs', clientsDir))).default;
  ({ startServer } = await import(new URL('lib/server.mjs', clientsDir)));
} catch (e) {
  console.error(`server_load: the openai package is not installed: run sh tests/server_js/setup.sh (${e.message})`);
  process.exit(2);
}

const { values: o } = parseArgs({
  options: {
    url: { type: 'string' }, qvl: { type: 'string' }, model: { type: 'string' }, np: { type: 'string', default: '4' },
    threads: { type: 'string' }, 'serve-arg': { type: 'string', multiple: true, default: [] },
    clients: { type: 'string', default: '4' }, requests: { type: 'string', default: '2' },
    'max-tokens': { type: 'string', default: '128' }, temperature: { type: 'string', default: '0' },
    prompt: { type: 'string', default: 'Write a long story about a lighthouse keeper and the sea.' },
    image: { type: 'string' }, 'api-key': { type: 'string', default: 'none' }, warmup: { type: 'string', default: '1' },
    compare: { type: 'boolean', default: false }, 'shared-prompt': { type: 'boolean', default: false }, 'timeout-s': { type: 'string', default: '600' },
  },
});
const int = (name) => {
  const n = Number(o[name]);
  if (!Number.isInteger(n) || n < 0) { console.error(`server_load: --${name} must be a whole number`); process.exit(2); }
  return n;
};
if (!o.url && !(o.qvl && o.model)) {
  console.error('server_load: give --url URL of a running server, or --qvl BIN --model DIR to start one (see the header)');
  process.exit(2);
}

const content = o.image
  ? [{ type: 'image_url', image_url: { url: `data:image/${o.image.split('.').pop().toLowerCase().replace('jpg', 'jpeg')};base64,${fs.readFileSync(o.image).toString('base64')}` } },
     { type: 'text', text: o.prompt }]
  : o.prompt;

const percentiles = (xs) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  const r = (x) => Math.round(x * 100) / 100;
  return { n: s.length, min: r(s[0]), p50: r(at(0.5)), p90: r(at(0.9)), p99: r(at(0.99)), max: r(s.at(-1)),
           mean: r(s.reduce((a, b) => a + b, 0) / s.length) };
};

// One streamed request: timings in ms relative to its own start.
async function oneRequest(openai, tag) {
  const t0 = performance.now();
  let first = null, last = null, tokens = null, promptTokens = null, finish = null, timings = null;
  const gaps = [];
  // A distinct first line per request: no request finds another's prompt in the server's prefix cache.
  const text = o['shared-prompt'] ? o.prompt : `[${tag}] ${o.prompt}`;
  const parts = Array.isArray(content) ? [content[0], { type: 'text', text }] : text;
  const stream = await openai.chat.completions.create({
    model: 'qvl', messages: [{ role: 'user', content: parts }], max_tokens: int('max-tokens'),
    temperature: Number(o.temperature), stream: true, stream_options: { include_usage: true } });
  for await (const chunk of stream) {
    const now = performance.now();
    if (chunk.usage) { tokens = chunk.usage.completion_tokens; promptTokens = chunk.usage.prompt_tokens; }
    if (chunk.timings) timings = chunk.timings; // qvl serve / llama-server extension
    const choice = chunk.choices?.[0];
    if (choice?.finish_reason) finish = choice.finish_reason;
    if (choice?.delta?.content) {
      if (first === null) first = now; else gaps.push(now - last);
      last = now;
    }
  }
  const ttft = first === null ? null : first - t0;
  // What HTTP, JSON, the template and image decoding add: the client's TTFT minus the server's own.
  const overhead = ttft !== null && timings?.prompt_ms != null ? ttft - timings.prompt_ms - (timings.queue_ms ?? 0) : null;
  return { ttft_ms: ttft, ttft_overhead_ms: overhead, total_ms: performance.now() - t0, tokens, prompt_tokens: promptTokens,
           finish_reason: finish, gaps };
}

async function run(baseURL, clients, requests) {
  const openai = new OpenAI({ baseURL, apiKey: o['api-key'], maxRetries: 0, timeout: int('timeout-s') * 1000 });
  const t0 = performance.now();
  const perClient = await Promise.all(Array.from({ length: clients }, async (_, c) => {
    const results = [];
    for (let i = 0; i < requests; i++) {
      try { results.push(await oneRequest(openai, `${clients}x${requests} client ${c} request ${i}`)); } catch (e) { results.push({ error: `${e.status ?? ''} ${e.message}`.trim() }); }
    }
    return results;
  }));
  const wallS = (performance.now() - t0) / 1000;
  const all = perClient.flat();
  const ok = all.filter((r) => !r.error);
  const tokens = ok.reduce((a, r) => a + (r.tokens ?? 0), 0);
  return {
    clients, requests_per_client: requests, wall_s: Math.round(wallS * 1000) / 1000,
    completed: ok.length, failed: all.length - ok.length, errors: [...new Set(all.filter((r) => r.error).map((r) => r.error))],
    completion_tokens: tokens, aggregate_tokens_per_s: Math.round((tokens / wallS) * 100) / 100,
    ttft_ms: percentiles(ok.map((r) => r.ttft_ms).filter((x) => x !== null)),
    ttft_overhead_ms: percentiles(ok.map((r) => r.ttft_overhead_ms).filter((x) => x !== null)),
    inter_token_ms: percentiles(ok.flatMap((r) => r.gaps)),
    finish_reasons: ok.reduce((m, r) => ({ ...m, [r.finish_reason]: (m[r.finish_reason] ?? 0) + 1 }), {}),
    per_client: perClient.map((rs, c) => ({
      client: c, ttft_ms: rs.map((r) => (r.ttft_ms == null ? null : Math.round(r.ttft_ms * 10) / 10)),
      tokens: rs.map((r) => r.tokens ?? null), inter_token_ms: percentiles(rs.flatMap((r) => r.gaps ?? [])),
      errors: rs.filter((r) => r.error).map((r) => r.error) })),
  };
}

let server = null;
try {
  let url = o.url?.replace(/\/+$/, '').replace(/\/v1$/, '');
  if (!url) {
    const extra = ['-np', o.np, ...(o.threads ? ['-t', o.threads] : []), ...o['serve-arg']];
    server = await startServer(o.qvl, o.model, extra, { readyMs: 600_000, quiet: true });
    url = server.url;
  }
  const baseURL = url + '/v1';
  if (int('warmup')) await run(baseURL, 1, 1); // first-touch of weights and caches, not reported
  const report = { url, max_tokens: int('max-tokens'), temperature: Number(o.temperature), image: o.image ?? null };
  if (o.compare) {
    report.one_client = await run(baseURL, 1, int('requests'));
    report.n_clients = await run(baseURL, int('clients'), int('requests'));
    report.ratio = Math.round((report.n_clients.aggregate_tokens_per_s / report.one_client.aggregate_tokens_per_s) * 100) / 100;
  } else {
    Object.assign(report, await run(baseURL, int('clients'), int('requests')));
  }
  console.log(JSON.stringify(report, null, 2));
} finally {
  if (server) await server.stop();
}
