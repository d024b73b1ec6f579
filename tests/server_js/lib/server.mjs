// Starts `qvl serve` for a test (or the load benchmark) and stops it again. The contract with the server:
// it prints `qvl serve: listening on http://HOST:PORT` on stdout once bound, and GET /health answers 200
// once the model is loaded. Every wait here is bounded in time; a server still running when the process
// exits (a failed assertion, an exception) is killed.
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';

const LISTEN_LINE = /^qvl serve: listening on (http:\/\/\S+?)\/?$/;
const live = new Set();
process.on('exit', () => { for (const p of live) p.kill('SIGKILL'); });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Options every test runner takes: --qvl BINARY --model DIR --images DIR --artifacts DIR.
export function testArgs() {
  const { values } = parseArgs({
    options: { qvl: { type: 'string' }, model: { type: 'string' }, images: { type: 'string' },
               artifacts: { type: 'string' }, chromium: { type: 'string' } },
    strict: false,
  });
  for (const need of ['qvl', 'model']) {
    if (!values[need]) throw new Error(`missing --${need} (see tests/server_js/CMakeLists.txt)`);
  }
  return values;
}

// Spawns `qvl serve -m MODEL --host 127.0.0.1 --port 0 ...extra`; resolves once /health is 200.
// Returns { url, baseURL (url + '/v1'), proc, stop(), output() }.
export async function startServer(qvl, model, extra = [], { readyMs = 120_000, quiet = false } = {}) {
  const args = ['serve', '-m', model, '--host', '127.0.0.1', '--port', '0', ...extra];
  const proc = spawn(qvl, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  const lines = []; // the server's output, printed when it fails to start
  let exited = null;
  proc.on('exit', (code, signal) => { exited = { code, signal }; live.delete(proc); });
  const stop = () => stopServer(proc);

  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "qvl serve: listening on" line within ${readyMs} ms`)), readyMs);
    const onLine = (stream) => {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (text) => {
        buf += text;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, '');
          buf = buf.slice(nl + 1);
          if (lines.length < 2000) lines.push(line);
          if (!quiet) process.stderr.write(`[qvl serve] ${line}\n`);
          const m = stream === proc.stdout && line.match(LISTEN_LINE);
          if (m) { clearTimeout(timer); resolve(m[1]); }
        }
      });
    };
    onLine(proc.stdout);
    onLine(proc.stderr);
    proc.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot run ${qvl}: ${e.message}`)); });
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`qvl serve exited (code ${code}, signal ${signal}) before listening:\n${lines.join('\n')}`));
    });
  }).catch(async (e) => { await stop(); throw e; });

  // Bounded poll: the listening line may come before the model is loaded (then /health is 503).
  const deadline = Date.now() + readyMs;
  for (let i = 0; ; i++) {
    if (exited) throw new Error(`qvl serve exited (${JSON.stringify(exited)}) while loading:\n${lines.join('\n')}`);
    try {
      const r = await fetch(url + '/health', { signal: AbortSignal.timeout(5000) });
      if (r.status === 200) break;
      await r.arrayBuffer();
    } catch { /* not accepting yet */ }
    if (i >= 1200 || Date.now() > deadline) {
      await stop();
      throw new Error(`GET ${url}/health not 200 after ${i + 1} tries`);
    }
    await sleep(100);
  }
  return { url, baseURL: url + '/v1', proc, stop, output: () => lines.join('\n') };
}

// SIGTERM (the server drains and exits), SIGKILL after 15 s. Resolves with the exit { code, signal }.
export async function stopServer(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return { code: proc.exitCode, signal: proc.signalCode };
  const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
  const result = await exited;
  clearTimeout(timer);
  live.delete(proc);
  return result;
}
