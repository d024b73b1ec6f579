// Issue #12, test 3: the chat page served at GET / in headless Chromium (puppeteer-core driving Debian's
// chromium): type a question, attach an image through the file input, send, and watch the streamed answer
// and its tokens/s line. The screenshot is kept as a test artifact (its path is printed).
// Run by ctest through run.sh: node webui_test.mjs --qvl QVL --model DIR --images DIR --artifacts DIR
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { testArgs, startServer } from './lib/server.mjs';

const args = testArgs();
const CHROMIUM = args.chromium || process.env.QVL_CHROMIUM || '/usr/bin/chromium';
const artifacts = args.artifacts || process.cwd();
const IMAGE = path.join(args.images, 'b_320x256.png');
const WAIT_MS = 60_000; // every waitFor below is bounded by this

if (!fs.existsSync(CHROMIUM)) {
  // CI installs it (tools/install_deps.sh); a missing browser must not look like a pass.
  console.error(`webui_test: no Chromium at ${CHROMIUM}: install it (apt-get install chromium, or tools/install_deps.sh) ` +
                'or point --chromium / QVL_CHROMIUM at one');
  process.exit(1);
}

async function launch() {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true, // the new headless mode
    // --no-sandbox: Chromium refuses to start its sandbox as root (CI containers run tests as root).
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    timeout: WAIT_MS,
    protocolTimeout: WAIT_MS,
  });
}

// The JSON bodies the page POSTs to /v1/chat/completions, in order.
function recordChatRequests(page) {
  const bodies = [];
  page.on('request', (req) => {
    if (req.method() === 'POST' && req.url().endsWith('/v1/chat/completions')) bodies.push(JSON.parse(req.postData() ?? 'null'));
  });
  return bodies;
}

// One unlabelled sample from the server's Prometheus text.
async function metric(server, name) {
  const text = await (await fetch(server.url + '/metrics')).text();
  const m = text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
  assert.ok(m, `${name} in /metrics`);
  return Number(m[1]);
}

async function setField(page, selector, value) {
  await page.$eval(selector, (e, v) => { e.value = v; e.dispatchEvent(new Event('change')); }, String(value));
}

// Waits until the last answer has finished streaming (send button back), then returns what the page shows.
async function lastAnswer(page) {
  await page.waitForFunction(() => {
    const answers = document.querySelectorAll('[data-testid=answer]');
    return answers.length && !answers[answers.length - 1].classList.contains('cursor') && !document.getElementById('send').disabled;
  }, { timeout: WAIT_MS, polling: 100 });
  return page.evaluate(() => {
    const msgs = document.querySelectorAll('[data-testid=msg-assistant]');
    const m = msgs[msgs.length - 1];
    const stats = m.querySelector('[data-testid=answer-stats]');
    return { text: m.querySelector('[data-testid=answer]').textContent, stats: stats.textContent,
             tps: Number(stats.dataset.tps), ttft: Number(stats.dataset.ttftMs), tokens: Number(stats.dataset.tokens),
             error: m.querySelector('[data-testid=error]')?.textContent ?? null };
  });
}

describe('web chat page in headless Chromium', () => {
  let server, browser;
  before(async () => {
    server = await startServer(args.qvl, args.model, ['-np', '4']);
    browser = await launch();
  });
  after(async () => {
    if (browser) await browser.close().catch(() => {});
    if (server) await server.stop();
  });

  it('streams an answer to a question with an attached image, shows tokens/s, and keeps the conversation', async () => {
    const page = await browser.newPage();
    await page.setViewport({ width: 1000, height: 800 });
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    const sent = recordChatRequests(page);
    const urls = [];
    page.on('request', (req) => urls.push(req.url()));
    const res = await page.goto(server.url + '/', { waitUntil: 'load', timeout: WAIT_MS });
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-type'] ?? '', /text\/html/);
    await page.waitForSelector('#prompt', { timeout: WAIT_MS });

    // Greedy and bounded, so the page's answer can be compared with the API's answer to the same request.
    await page.click('#settings summary');
    await setField(page, '#temperature', 0);
    await setField(page, '#max-tokens', 16);

    await page.type('#prompt', 'What is in this picture?');
    const input = await page.$('#file-input');
    await input.uploadFile(IMAGE);
    await page.waitForSelector('[data-testid=attachment] img', { timeout: WAIT_MS });
    await page.keyboard.press('Enter'); // Enter sends (focus is still in the prompt)

    // Streamed text shows up while the answer is still running or right after.
    await page.waitForFunction(() => document.querySelector('[data-testid=answer]')?.textContent.length > 0,
                               { timeout: WAIT_MS, polling: 50 });
    const first = await lastAnswer(page);
    assert.equal(first.error, null, `page showed an error: ${first.error}`);
    assert.ok(first.text.length > 0);
    assert.ok(first.tps > 0, `tokens/s line: ${JSON.stringify(first.stats)}`);
    assert.match(first.stats, /tok\/s/);
    assert.ok(first.ttft >= 0);
    assert.ok(first.tokens >= 1 && first.tokens <= 16, first.stats);
    assert.equal(await page.$$eval('[data-testid=attachment]', (a) => a.length), 0, 'attachments cleared after sending');

    // What the page sent: a streaming request with usage, the image as a data URI, the settings.
    assert.equal(sent.length, 1);
    const body = sent[0];
    assert.equal(body.stream, true);
    assert.equal(body.stream_options?.include_usage, true);
    assert.equal(body.temperature, 0);
    assert.equal(body.max_tokens, 16);
    const parts = body.messages.at(-1).content;
    const img = parts.find((p) => p.type === 'image_url');
    assert.equal(img.image_url.url, `data:image/png;base64,${fs.readFileSync(IMAGE).toString('base64')}`);
    assert.deepEqual(parts.find((p) => p.type === 'text'), { type: 'text', text: 'What is in this picture?' });

    // The page shows exactly what the server answers to the same request without streaming.
    const direct = await fetch(server.baseURL + '/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, stream: false, stream_options: undefined }) }).then((r) => r.json());
    assert.equal(first.text, direct.choices[0].message.content);

    // Second turn: the whole conversation is resent (user with image, assistant answer, new user turn),
    // unchanged, so the server finds the first turn (image included) in its prefix cache.
    const cachedBefore = await metric(server, 'qvl_cached_prompt_tokens_total');
    await page.type('#prompt', 'And the colours?');
    await page.click('#send');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=msg-assistant]').length === 2, { timeout: WAIT_MS });
    const second = await lastAnswer(page);
    assert.equal(second.error, null, `page showed an error: ${second.error}`);
    assert.equal(sent.length, 2);
    assert.deepEqual(sent[1].messages.map((m) => m.role), ['user', 'assistant', 'user']);
    assert.equal(sent[1].messages[1].content, first.text);
    assert.equal(sent[1].messages[2].content, 'And the colours?');
    assert.deepEqual(sent[1].messages[0], body.messages.at(-1), 'the first turn is resent as it was');
    const cached = (await metric(server, 'qvl_cached_prompt_tokens_total')) - cachedBefore;
    assert.ok(cached > 80, `second turn reused ${cached} cached prompt tokens; the first turn's image alone is 80`);

    const shot = path.join(artifacts, 'webui_chat.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`webui_test: screenshot saved to ${shot}`);
    assert.deepEqual(pageErrors, []);
    // Self-contained: nothing but the server itself (and the page's own data: URLs) is ever fetched.
    assert.deepEqual(urls.filter((u) => !u.startsWith(server.url + '/') && !u.startsWith('data:')), []);

    // New chat clears the conversation: the next request has one message again.
    await page.click('#new-chat');
    assert.equal(await page.$$eval('[data-testid=msg-assistant]', (a) => a.length), 0);
  });

  it('Shift+Enter adds a line without sending; images can also be pasted and dropped, and removed', async () => {
    const page = await browser.newPage();
    const sent = recordChatRequests(page);
    await page.goto(server.url + '/', { waitUntil: 'load', timeout: WAIT_MS });
    await page.type('#prompt', 'line one');
    await page.keyboard.down('Shift');
    await page.keyboard.press('Enter');
    await page.keyboard.up('Shift');
    await page.keyboard.type('line two');
    assert.equal(await page.$eval('#prompt', (e) => e.value), 'line one\nline two');
    assert.equal(sent.length, 0);

    const png = (name) => fs.readFileSync(path.join(args.images, name)).toString('base64');
    await page.evaluate((a, b) => {
      const file = (b64, name) => new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name, { type: 'image/png' });
      const pasted = new DataTransfer();
      pasted.items.add(file(a, 'pasted.png'));
      document.getElementById('prompt').dispatchEvent(new ClipboardEvent('paste', { clipboardData: pasted, bubbles: true }));
      const dropped = new DataTransfer();
      dropped.items.add(file(b, 'dropped.png'));
      document.querySelector('main').dispatchEvent(new DragEvent('drop', { dataTransfer: dropped, bubbles: true, cancelable: true }));
    }, png('c1_256x192.png'), png('c2_450x250.png'));
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=attachment] img').length === 2, { timeout: WAIT_MS });
    assert.deepEqual(await page.$$eval('[data-testid=attachment] img', (imgs) => imgs.map((i) => i.alt)), ['pasted.png', 'dropped.png']);
    await page.click('[data-testid=attachment] [data-testid=remove-attachment]');
    assert.deepEqual(await page.$$eval('[data-testid=attachment] img', (imgs) => imgs.map((i) => i.alt)), ['dropped.png']);
    assert.equal(sent.length, 0, 'nothing sent before Enter or Send');
    await page.close();
  });

  it('the stop button aborts a long answer and the server cancels it (fewer than max_tokens generated)', async () => {
    const page = await browser.newPage();
    await page.goto(server.url + '/', { waitUntil: 'load', timeout: WAIT_MS });
    // The tiny model's greedy answer runs to max_tokens (no early end), several seconds at 4000.
    await setField(page, '#temperature', 0);
    await setField(page, '#max-tokens', 4000);
    const before = await metric(server, 'qvl_generated_tokens_total');
    await page.type('#prompt', 'Tell me a long story.');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('[data-testid=answer]')?.textContent.length > 0,
                               { timeout: WAIT_MS, polling: 20 });
    const running = await page.evaluate(() => ({
      stopShown: !document.getElementById('stop').hidden,
      stats: document.querySelector('[data-testid=answer-stats]')?.textContent,
      error: document.querySelector('[data-testid=error]')?.textContent ?? null }));
    assert.ok(running.stopShown, `the answer was over before Stop could be pressed: ${JSON.stringify(running)}`);
    await page.click('#stop');
    await page.waitForSelector('[data-testid=stopped]', { timeout: WAIT_MS });
    assert.equal(await page.$eval('#send', (b) => b.hidden || b.disabled), false, 'send is back after stop');
    assert.equal(await page.$('[data-testid=error]'), null);
    // Bounded wait for the slot to be released (cancelled, or, if the server missed the disconnect, finished).
    let busy = 1;
    for (let i = 0; i < 600 && busy > 0; i++) {
      busy = await metric(server, 'qvl_slots_busy');
      if (busy > 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(busy, 0, 'slot still busy after 60 s');
    const generated = (await metric(server, 'qvl_generated_tokens_total')) - before;
    console.log(`stop test: ${generated} tokens generated before the cancel`);
    assert.ok(generated < 4000, `the stopped request still generated ${generated} tokens (max_tokens 4000)`);
    await page.close();
  });
});

describe('web chat page with --api-key', () => {
  let server, browser;
  before(async () => {
    server = await startServer(args.qvl, args.model, ['-np', '1', '--api-key', 'page-key-42']);
    browser = await launch();
  });
  after(async () => {
    if (browser) await browser.close().catch(() => {});
    if (server) await server.stop();
  });

  it('shows the key field after a 401, sends the key as a Bearer token, and keeps it in localStorage', async () => {
    const page = await browser.newPage();
    const auth = [];
    page.on('request', (req) => { if (req.url().includes('/v1/')) auth.push(req.headers().authorization ?? null); });
    await page.goto(server.url + '/', { waitUntil: 'load', timeout: WAIT_MS });
    // The page asks /v1/models at load; the 401 reveals the key field.
    await page.waitForSelector('#api-key-row:not([hidden])', { visible: true, timeout: WAIT_MS });
    await setField(page, '#max-tokens', 4);
    await page.type('#prompt', 'hello');
    await page.click('#send');
    await page.waitForSelector('[data-testid=error]', { timeout: WAIT_MS });
    const err = await page.$eval('[data-testid=error]', (e) => e.textContent);
    assert.match(err, /^401/);

    await page.type('#api-key', 'page-key-42');
    // The failed turn went back into the composer: sending again is one click.
    assert.equal(await page.$eval('#prompt', (e) => e.value), 'hello');
    await page.click('#send');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=msg-assistant]').length === 2, { timeout: WAIT_MS });
    const answer = await lastAnswer(page);
    assert.equal(answer.error, null, `page showed an error: ${answer.error}`);
    assert.ok(answer.tokens >= 1);
    assert.equal(auth.at(-1), 'Bearer page-key-42');
    assert.equal(await page.evaluate(() => localStorage.getItem('qvl.apiKey')), 'page-key-42');
  });
});
