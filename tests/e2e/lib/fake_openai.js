// A fake OpenAI-compatible upstream for the browser tests: tokenrelay's real `openai` provider
// talks to it (run.sh sets OPENAI_BASE_URL and OPENAI_API_KEY for the server without keys).
// `POST /v1/chat/completions` with `stream: true` answers with one of the recorded fixtures of
// tests/fixtures/openai, byte for byte, as `text/event-stream`: the request's `model` names it
// (model `refusal` is refusal.sse, so `openai/refusal` through tokenrelay). `GET /v1/models`
// lists the fixtures. `GET /_requests` answers what the chat requests carried (model, stream,
// whether the bearer key was right), for the tests to check what tokenrelay sent upstream.
//
//   node lib/fake_openai.js     # prints "fake-openai listening on http://127.0.0.1:PORT/v1"
//
// FAKE_OPENAI_KEY is the bearer key it expects (a wrong one is a 401 with error_401.json);
// FAKE_OPENAI_PACE_MS spaces the fixture's events (default 20 ms) so that they stream in
// rather than arrive as one read.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/openai');

function sendJson(response, status, value) {
  const body = typeof value === 'string' ? value : JSON.stringify(value);
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(body);
}

function notFound(response, message, code) {
  sendJson(response, 404, { error: { message, type: 'invalid_request_error', param: null, code } });
}

/** The fixture's bytes cut after each blank line (LF or CRLF), so each event is its own write. */
function events(bytes) {
  const parts = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i += 1) {
    const lf = bytes[i] === 0x0a && bytes[i + 1] === 0x0a;
    const crlf = bytes[i] === 0x0d && bytes[i + 1] === 0x0a && bytes[i + 2] === 0x0d
      && bytes[i + 3] === 0x0a;
    if (lf || crlf) {
      const end = i + (lf ? 2 : 4);
      parts.push(bytes.subarray(start, end));
      start = end;
      i = end - 1;
    }
  }
  if (start < bytes.length) parts.push(bytes.subarray(start));
  return parts;
}

/** The recorded fixtures by model name: `<name>.sse` in tests/fixtures/openai. */
function fixtureNames() {
  return fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.sse')).map((f) => f.slice(0, -4)).sort();
}

/**
 * Starts the fake on 127.0.0.1:`port` (0: any free port); answers {url (with /v1), requests,
 * close()}.
 */
export async function startFakeOpenAI({ key = '', paceMs = 20, port = 0 } = {}) {
  const requests = [];
  const server = http.createServer(async (request, response) => {
    const url = new URL(request.url, 'http://fake');
    let raw = '';
    for await (const chunk of request) raw += chunk;

    if (request.method === 'GET' && url.pathname === '/v1/models') {
      const data = fixtureNames().map((id) => ({ id, object: 'model', created: 0, owned_by: 'fixtures' }));
      sendJson(response, 200, { object: 'list', data });
      return;
    }
    if (request.method === 'GET' && url.pathname === '/_requests') {
      sendJson(response, 200, requests);
      return;
    }
    if (request.method !== 'POST' || url.pathname !== '/v1/chat/completions') {
      notFound(response, `no route ${request.method} ${url.pathname}`, 'unknown_url');
      return;
    }

    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      sendJson(response, 400, { error: { message: 'the body is not JSON', type: 'invalid_request_error', param: null, code: null } });
      return;
    }
    const authorized = !key || request.headers.authorization === `Bearer ${key}`;
    requests.push({
      model: body.model,
      stream: body.stream,
      include_usage: body.stream_options?.include_usage ?? null,
      messages: Array.isArray(body.messages) ? body.messages.length : 0,
      authorized,
    });
    if (!authorized) {
      sendJson(response, 401, fs.readFileSync(path.join(FIXTURES, 'error_401.json'), 'utf8'));
      return;
    }
    if (body.stream !== true) {
      sendJson(response, 400, { error: { message: 'the fake upstream only streams', type: 'invalid_request_error', param: 'stream', code: null } });
      return;
    }
    const model = String(body.model || '');
    if (!/^[a-z0-9_]+$/.test(model) || !fixtureNames().includes(model)) {
      notFound(response, `The model \`${model}\` does not exist (fixtures: ${fixtureNames().join(', ')})`, 'model_not_found');
      return;
    }

    const bytes = fs.readFileSync(path.join(FIXTURES, `${model}.sse`));
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    for (const part of events(bytes)) {
      if (response.destroyed) return;
      response.write(part);
      if (paceMs > 0) await new Promise((resolve) => { setTimeout(resolve, paceMs); });
    }
    response.end();
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}/v1`;
  return {
    url,
    requests,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  const pace = Number(process.env.FAKE_OPENAI_PACE_MS ?? 20);
  const fake = await startFakeOpenAI({ key: process.env.FAKE_OPENAI_KEY || '', paceMs: pace });
  console.log(`fake-openai listening on ${fake.url}`);
  const stop = () => fake.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
