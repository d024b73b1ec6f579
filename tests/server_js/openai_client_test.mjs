// Issue #12, test 1: the official `openai` JavaScript package, unchanged, against `qvl serve` on the bundled
// tiny model (random weights: its text is gibberish, so assertions compare the server with itself and with
// numbers it must get right: token counts, image tokens, finish reasons, status codes).
// Run by ctest through run.sh: node openai_client_test.mjs --qvl QVL --model DIR --images DIR
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { testArgs, startServer } from './lib/server.mjs';

const args = testArgs();
const image = (name) => `data:image/png;base64,${fs.readFileSync(path.join(args.images, name)).toString('base64')}`;
// b_320x256.png: 320x256 pixels is already a multiple of 32 (patch 16 x merge 2) within the pixel budget, so
// it becomes a 20x16 patch grid, merged 2x2 into exactly 80 image tokens.
const B_IMAGE_TOKENS = 80;
const QUESTION = 'Describe the picture in one sentence.';
const client = (server, opts = {}) => new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60_000, ...opts });

// Collects a stream: the text, the chunks, and the usage chunk (choices: []).
async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const withChoice = chunks.filter((c) => c.choices.length > 0);
  const text = withChoice.map((c) => c.choices[0].delta?.content ?? '').join('');
  const contentChunks = withChoice.filter((c) => c.choices[0].delta?.content).length;
  const usage = chunks.find((c) => c.usage)?.usage ?? null;
  return { chunks, withChoice, text, contentChunks, usage };
}

// The error a promise rejects with (and a failure when it resolves instead).
async function rejection(promise) {
  try { await promise; } catch (e) { return e; }
  assert.fail('the request succeeded; an error was expected');
}

describe('openai client against qvl serve -np 4', () => {
  let server, openai, model;
  before(async () => {
    server = await startServer(args.qvl, args.model, ['-np', '4']);
    openai = client(server);
  });
  after(async () => { if (server) await server.stop(); });

  it('lists exactly one model at /v1/models', async () => {
    const models = [];
    for await (const m of openai.models.list()) models.push(m);
    assert.equal(models.length, 1);
    assert.equal(models[0].object, 'model');
    assert.equal(typeof models[0].id, 'string');
    assert.ok(models[0].id.length > 0);
    model = models[0].id;
    const one = await openai.models.retrieve(model).catch(() => null); // optional in the issue: not asserted
    if (one) assert.equal(one.id, model);
  });

  it('non-streaming chat: message, finish_reason and usage that add up', async () => {
    const r = await openai.chat.completions.create({
      model: model ?? 'any', messages: [{ role: 'user', content: QUESTION }], max_tokens: 8, temperature: 0 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(typeof r.id, 'string');
    assert.equal(r.choices.length, 1);
    const [c] = r.choices;
    assert.equal(c.index, 0);
    assert.equal(c.message.role, 'assistant');
    assert.equal(typeof c.message.content, 'string');
    assert.ok(['stop', 'length'].includes(c.finish_reason), c.finish_reason);
    assert.ok(r.usage.prompt_tokens > 0);
    assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 8, `completion_tokens ${r.usage.completion_tokens}`);
    if (c.finish_reason === 'length') assert.equal(r.usage.completion_tokens, 8);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  });

  it('streaming chat at temperature 0 gives the non-streaming text, framed as OpenAI chunks, with include_usage', async () => {
    const body = { model: 'whatever-name', messages: [{ role: 'user', content: QUESTION }], max_tokens: 12, temperature: 0 };
    const plain = await openai.chat.completions.create(body);
    const s = await collect(await openai.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }));
    assert.equal(s.text, plain.choices[0].message.content);
    assert.ok(s.chunks.every((c) => c.object === 'chat.completion.chunk'));
    assert.equal(s.withChoice[0].choices[0].delta.role, 'assistant', 'first delta carries the role');
    const last = s.withChoice.at(-1).choices[0];
    assert.equal(last.finish_reason, plain.choices[0].finish_reason);
    assert.ok(!last.delta.content, 'the finish chunk has an empty delta');
    // include_usage: one final chunk with no choices, after the finish chunk.
    assert.equal(s.chunks.at(-1).choices.length, 0);
    assert.ok(s.chunks.at(-1).usage);
    assert.deepEqual(
      [s.usage.prompt_tokens, s.usage.completion_tokens, s.usage.total_tokens],
      [plain.usage.prompt_tokens, plain.usage.completion_tokens, plain.usage.total_tokens]);
    // Whole UTF-8 characters per chunk: never more text chunks than tokens.
    assert.ok(s.contentChunks >= 1 && s.contentChunks <= s.usage.completion_tokens,
      `${s.contentChunks} text chunks for ${s.usage.completion_tokens} tokens`);
    if (last.finish_reason === 'length') assert.equal(s.usage.completion_tokens, 12);
  });

  it('a stream without include_usage has no usage chunk', async () => {
    const s = await collect(await openai.chat.completions.create({
      model: 'm', messages: [{ role: 'user', content: QUESTION }], max_tokens: 4, temperature: 0, stream: true }));
    assert.equal(s.usage, null);
    assert.ok(s.chunks.every((c) => c.choices.length === 1));
  });

  it('an image as a base64 data URI adds exactly its image tokens (80) plus vision start/end', async () => {
    const ask = (parts) => openai.chat.completions.create({
      model: 'm', max_tokens: 1, temperature: 0, messages: [{ role: 'user', content: parts }] });
    const text = { type: 'text', text: QUESTION };
    const none = await ask([text]);
    const one = await ask([{ type: 'image_url', image_url: { url: image('b_320x256.png') } }, text]);
    assert.equal(one.usage.prompt_tokens - none.usage.prompt_tokens, B_IMAGE_TOKENS + 2);
    assert.equal(one.choices[0].message.role, 'assistant');
  });

  it('two images in one message: each adds its own tokens', async () => {
    const text = { type: 'text', text: QUESTION };
    const img = (n) => ({ type: 'image_url', image_url: { url: image(n) } });
    const ask = (parts) => openai.chat.completions.create({
      model: 'm', max_tokens: 1, temperature: 0, messages: [{ role: 'user', content: parts }] });
    const none = await ask([text]);
    const b = await ask([img('b_320x256.png'), text]);
    const c2 = await ask([img('c2_450x250.png'), text]);
    const both = await ask([img('b_320x256.png'), img('c2_450x250.png'), text]);
    const cost = (r) => r.usage.prompt_tokens - none.usage.prompt_tokens;
    assert.equal(cost(both), cost(b) + cost(c2));
    // c2 is 450x250: resized to 448x256, a 28x16 patch grid, 112 merged tokens.
    assert.equal(cost(c2), 112 + 2);
  });

  it('stop: the text ends right before the stop string, which never appears (non-streaming and streaming)', async () => {
    const body = { model: 'm', messages: [{ role: 'user', content: QUESTION }], max_tokens: 24, temperature: 0 };
    const full = (await openai.chat.completions.create(body)).choices[0].message.content;
    // A stop string from the middle of the greedy answer; the answer up to its first occurrence must remain.
    const chars = [...full];
    assert.ok(chars.length >= 4, `greedy answer too short to cut: ${JSON.stringify(full)}`);
    const mid = Math.floor(chars.length / 2);
    const stop = chars.slice(mid, mid + 2).join('');
    const expected = full.slice(0, full.indexOf(stop));
    const cut = await openai.chat.completions.create({ ...body, stop: [stop, '@@no-such-text@@'] });
    assert.equal(cut.choices[0].message.content, expected);
    assert.equal(cut.choices[0].finish_reason, 'stop');
    const streamed = await collect(await openai.chat.completions.create({ ...body, stop, stream: true }));
    assert.equal(streamed.text, expected);
    assert.equal(streamed.withChoice.at(-1).choices[0].finish_reason, 'stop');
  });

  it('seed: the same seed at temperature 0.9 gives the same text twice, and the seed matters', async () => {
    const ask = (seed) => openai.chat.completions.create({
      model: 'm', messages: [{ role: 'user', content: QUESTION }], max_tokens: 16, temperature: 0.9, seed })
      .then((r) => r.choices[0].message.content);
    const a = await ask(1234);
    const b = await ask(1234);
    assert.equal(a, b);
    // If the server ignored seed/temperature (greedy, or one fixed RNG), every seed would give the same text.
    const others = [];
    for (const seed of [1, 2, 3, 4, 5]) others.push(await ask(seed));
    assert.ok(others.some((t) => t !== a), 'five other seeds all reproduced the seed-1234 text');
  });

  it('errors are APIError 400 with an OpenAI error object (n=2, a wrong type)', async () => {
    for (const bad of [{ n: 2 }, { temperature: 'hot' }, { messages: 'not an array' }]) {
      const e = await rejection(openai.chat.completions.create({
        model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, ...bad }));
      assert.ok(e instanceof OpenAI.APIError, `${JSON.stringify(bad)}: ${e}`);
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.equal(e.status, 400, JSON.stringify(bad));
      assert.equal(typeof e.error?.message, 'string', 'error object with a message');
      assert.ok(e.error.message.length > 0);
    }
  });
});

// The random tiny model never writes a <tool_call>; the server's hidden test hook --test-reply TEXT replaces
// every answer's text (the model still runs), so the real parser and the API's tool_calls shape are tested.
describe('openai client: tools round trip (qvl serve --test-reply with a <tool_call>)', () => {
  const CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>';
  const tools = [{ type: 'function', function: {
    name: 'get_weather', description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city'] } } }];
  const ask = [{ role: 'user', content: 'What is the weather in Paris?' }];
  let server, openai;
  before(async () => {
    server = await startServer(args.qvl, args.model, ['-np', '2', '--test-reply', CALL]);
    openai = client(server);
  });
  after(async () => { if (server) await server.stop(); });

  it('non-streaming: the call comes back as tool_calls with finish_reason tool_calls', async () => {
    const r = await openai.chat.completions.create({ model: 'm', messages: ask, tools, max_tokens: 4, temperature: 0 });
    const [c] = r.choices;
    assert.equal(c.finish_reason, 'tool_calls');
    assert.equal(c.message.tool_calls.length, 1);
    const call = c.message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.equal(typeof call.id, 'string');
    assert.ok(call.id.length > 0);
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris', unit: 'celsius' });
    assert.ok(!c.message.content, `no content besides the call: ${JSON.stringify(c.message.content)}`);
  });

  // Round trip: the agent loop sends the assistant message back exactly as it came (OpenAI's shape:
  // content null beside tool_calls) followed by the tool's result; the template must render both.
  for (const [what, edit] of [['as returned (content null)', (m) => m], ['with content ""', (m) => ({ ...m, content: '' })]]) {
    it(`the assistant's tool call ${what} and the tool result are accepted as history`, async () => {
      const r = await openai.chat.completions.create({ model: 'm', messages: ask, tools, max_tokens: 4, temperature: 0 });
      const message = r.choices[0].message;
      const follow = await openai.chat.completions.create({ model: 'm', tools, max_tokens: 4, temperature: 0, messages: [
        ...ask, edit(message), { role: 'tool', tool_call_id: message.tool_calls[0].id, content: '{"temperature": 18, "sky": "clear"}' }] });
      assert.ok(follow.usage.prompt_tokens > r.usage.prompt_tokens + 10, 'the call and its result are in the prompt');
      assert.equal(follow.choices[0].message.role, 'assistant');
    });
  }

  it('streaming: a tool_calls delta, then finish_reason tool_calls; no <tool_call> text leaks', async () => {
    const s = await collect(await openai.chat.completions.create({
      model: 'm', messages: ask, tools, max_tokens: 4, temperature: 0, stream: true, stream_options: { include_usage: true } }));
    assert.ok(!s.text.includes('<tool_call>'), JSON.stringify(s.text));
    const deltas = s.withChoice.flatMap((c) => c.choices[0].delta?.tool_calls ?? []);
    assert.ok(deltas.length >= 1);
    const name = deltas.map((d) => d.function?.name ?? '').join('');
    const argsText = deltas.map((d) => d.function?.arguments ?? '').join('');
    assert.equal(name, 'get_weather');
    assert.deepEqual(JSON.parse(argsText), { city: 'Paris', unit: 'celsius' });
    assert.equal(deltas[0].index, 0);
    assert.equal(s.withChoice.at(-1).choices[0].finish_reason, 'tool_calls');
    assert.ok(s.usage.completion_tokens >= 1);
  });

  it('without tools in the request the same text is plain content', async () => {
    const r = await openai.chat.completions.create({ model: 'm', messages: ask, max_tokens: 4, temperature: 0 });
    assert.equal(r.choices[0].message.content, CALL);
    assert.ok(!r.choices[0].message.tool_calls?.length);
    assert.notEqual(r.choices[0].finish_reason, 'tool_calls');
  });
});

describe('openai client: 401 with --api-key', () => {
  let server;
  before(async () => { server = await startServer(args.qvl, args.model, ['-np', '1', '--api-key', 'sesame-123']); });
  after(async () => { if (server) await server.stop(); });

  it('a wrong key is AuthenticationError 401 on chat and models; the right key works', async () => {
    const wrong = client(server, { apiKey: 'not-the-key' });
    for (const call of [
      () => wrong.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
      () => wrong.models.list()]) {
      const e = await rejection(call());
      assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
      assert.equal(e.status, 401);
      assert.equal(typeof e.error?.message, 'string');
    }
    const right = client(server, { apiKey: 'sesame-123' });
    const r = await right.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    assert.equal(r.choices[0].message.role, 'assistant');
    // /health stays open without a key (readiness probes).
    assert.equal((await fetch(server.url + '/health')).status, 200);
  });
});

describe('openai client: 413 with --max-body-mb 1', () => {
  let server;
  before(async () => { server = await startServer(args.qvl, args.model, ['-np', '1', '--max-body-mb', '1']); });
  after(async () => { if (server) await server.stop(); });

  it('a 1.5 MB body is APIError 413; a small one still works afterwards', async () => {
    const openai = client(server);
    const e = await rejection(openai.chat.completions.create({
      model: 'm', max_tokens: 2, messages: [{ role: 'user', content: 'x'.repeat(1_500_000) }] }));
    assert.ok(e instanceof OpenAI.APIError, String(e));
    assert.equal(e.status, 413);
    const r = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    assert.equal(r.choices[0].message.role, 'assistant');
  });
});

describe('openai client: 503 when the queue is full (-np 1 --queue 1)', () => {
  let server;
  before(async () => { server = await startServer(args.qvl, args.model, ['-np', '1', '--queue', '1']); });
  after(async () => { if (server) await server.stop(); });

  it('of 8 concurrent long streams some complete and the others get 503 with Retry-After', async () => {
    const openai = client(server);
    // Long answers keep the one slot busy while the others arrive; all 8 are sent before any is read.
    const calls = Array.from({ length: 8 }, () => openai.chat.completions
      .create({ model: 'm', messages: [{ role: 'user', content: QUESTION }], max_tokens: 512, temperature: 0, stream: true })
      .then(collect));
    const results = await Promise.allSettled(calls);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
    console.log(`queue-full test: ${ok.length} completed, ${failed.length} refused`);
    for (const e of failed) {
      assert.ok(e instanceof OpenAI.APIError, String(e));
      assert.equal(e.status, 503, String(e));
      assert.ok(e.headers?.['retry-after'], 'Retry-After header');
    }
    assert.ok(ok.length >= 1, 'at least the request in the slot completes');
    assert.ok(failed.length >= 1, `no 503 among 8 concurrent requests (${ok.length} completed)`);
    for (const r of ok) assert.ok(r.value.withChoice.at(-1).choices[0].finish_reason, 'a completed stream ends with a finish chunk');
  });
});
