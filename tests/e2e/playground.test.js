// The playground in headless Chromium (playwright-core driving Debian's chromium), against a
// real tokenrelay that run.sh started: TOKENRELAY_URL without keys, TOKENRELAY_KEYED_URL with
// the key TOKENRELAY_E2E_KEY. The server without keys has a fake OpenAI upstream,
// FAKE_OPENAI_URL (lib/fake_openai.js), that replays tests/fixtures/openai: model
// `openai/<fixture>` goes through tokenrelay's real OpenAI provider. Tests run in order; the
// last one checks that no page logged an error in any of them.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { Cutter } from './lib/cutter.js';
import {
  AGENT_ANSWER, AGENT_STEPS, Feed, createAgent, publishEvents, runAgent, status,
} from './lib/publishers.js';

const BASE = required('TOKENRELAY_URL');
const KEYED = required('TOKENRELAY_KEYED_URL');
const KEY = required('TOKENRELAY_E2E_KEY');
const OUTPUT = process.env.E2E_OUTPUT || path.join(import.meta.dirname, 'output');
const DOCS_SCREENSHOT = process.env.E2E_DOCS_SCREENSHOT || '';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const AGENT_PUBLISHER = required('AGENT_PUBLISHER');
const FAKE_OPENAI = required('FAKE_OPENAI_URL');
const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/openai');

/** What a correct parser extracts from tests/fixtures/openai/<name>.sse. */
const fixture = (name) => JSON.parse(fs.readFileSync(path.join(FIXTURES, `${name}.expected.json`), 'utf8'));

/** The chat requests the fake OpenAI upstream received, oldest first. */
async function upstreamRequests() {
  const response = await fetch(new URL('/_requests', FAKE_OPENAI));
  assert.equal(response.status, 200);
  return response.json();
}

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with tests/e2e/run.sh`);
  return value;
}

let browser;
const contexts = [];
/** Every console error and uncaught exception of every page, with the test it came from. */
const errors = [];
/** Errors a test causes on purpose (a network cut, a request without a key). */
let allowed = [];
let current = '';

before(async () => {
  fs.mkdirSync(OUTPUT, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Playwright gives each launch a fresh, empty profile of its own (--user-data-dir).
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
});

after(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
});

function named(name, body, timeout = 30_000) {
  test(name, { timeout }, async () => {
    current = name;
    allowed = [];
    await body();
  });
}

function allow(pattern) {
  allowed.push(pattern);
}

async function openPage(url, { viewport = { width: 1280, height: 860 } } = {}) {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    errors.push({ test: current, text, expected: allowed.some((p) => p.test(text)) });
  });
  page.on('pageerror', (error) => {
    errors.push({ test: current, text: `uncaught: ${error.message}`, expected: false });
  });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
  return page;
}

const text = (page, selector) => page.textContent(selector);
const shot = (page, name) => page.screenshot({ path: path.join(OUTPUT, name), fullPage: true });

async function waitText(page, selector, expected, timeout = 20_000) {
  await page.waitForFunction(
    ([sel, want]) => document.querySelector(sel)?.textContent === want,
    [selector, expected],
    { timeout },
  ).catch(async (e) => {
    throw new Error(`${selector} is ${JSON.stringify(await text(page, selector))}, `
      + `not ${JSON.stringify(expected)}: ${e.message}`);
  });
}

async function waitContains(page, selector, part, timeout = 20_000) {
  await page.waitForFunction(
    ([sel, want]) => (document.querySelector(sel)?.textContent || '').includes(want),
    [selector, part],
    { timeout },
  ).catch(async (e) => {
    throw new Error(`${selector} (${JSON.stringify(await text(page, selector))}) never `
      + `contained ${JSON.stringify(part)}: ${e.message}`);
  });
}

/** Picks `model` (typing it when the list does not have it) and sends a message. */
async function sendChat(page, model, message = 'Count for me, please.') {
  const listed = await page.$$eval('#chat-model option', (os) => os.map((o) => o.value));
  if (listed.includes(model)) {
    await page.selectOption('#chat-model', model);
  } else {
    await page.selectOption('#chat-model', '');
    await page.fill('#chat-custom-model', model);
  }
  await page.fill('#chat-message', message);
  await page.click('#chat-send');
  await page.waitForFunction(() => document.querySelector('#chat-stream-id').textContent.startsWith('st_'));
  return text(page, '#chat-stream-id');
}

const tokens = (n) => Array.from({ length: n }, (_, i) => `tok${i + 1} `).join('');

function assertNoRepeats(answer) {
  const words = answer.trim().split(/\s+/);
  const repeated = words.filter((w, i) => words.indexOf(w) !== i);
  assert.deepEqual(repeated, [], `repeated words in ${JSON.stringify(answer)}`);
}

/** Every `/events` request the page makes, with the headers the network stack sent. */
function recordSubscriptions(page) {
  const seen = [];
  page.on('request', (request) => {
    if (!new URL(request.url()).pathname.endsWith('/events')) return;
    seen.push(request.allHeaders().then((headers) => ({
      query: new URL(request.url()).searchParams,
      lastEventId: headers['last-event-id'],
    })));
  });
  return () => Promise.all(seen);
}

named('1. a chat answer streams and completes', async () => {
  const page = await openPage(`${BASE}/`);
  await page.waitForFunction(() => document.querySelectorAll('#chat-model option').length > 2);
  const models = await page.$$eval('#chat-model option', (os) => os.map((o) => o.value));
  assert.ok(models.includes('mock/default'), `models from /v1/models: ${models}`);
  assert.equal(await page.inputValue('#chat-model'), 'mock/default', 'a mock model by default');

  await page.click('#chat-send');
  // Tokens show while the answer is still running, not all at the end.
  await page.waitForFunction(() => document.querySelector('#chat-answer').textContent.length > 0
    && document.querySelector('#chat-status').textContent === 'running');
  const partial = await text(page, '#chat-answer');
  await waitText(page, '#chat-status', 'done');
  const answer = await text(page, '#chat-answer');
  assert.ok(answer.trim().length > 0, 'a non-empty answer');
  assert.ok(answer.startsWith(partial) && answer.length > partial.length,
    `streamed: ${JSON.stringify(partial)} then ${JSON.stringify(answer)}`);

  const id = await text(page, '#chat-stream-id');
  const server = await status(BASE, id);
  assert.equal(server.status, 'completed');
  assert.equal(answer, server.aggregate.choices[0].text, 'the page shows what the server kept');
  assert.equal(Number(await text(page, '#chat-events')), server.event_count);
  assert.equal(await text(page, '#chat-last-id'), server.last_event_id);
  assert.equal(await text(page, '#chat-resumes'), '0');
  assert.equal(await text(page, '#chat-connection'), 'closed (stream ended)');
  assert.ok(await page.isDisabled('#chat-drop') && await page.isDisabled('#chat-cancel'));
  await shot(page, 'chat.png');
});

named('2. a cut mid-answer resumes with no gap and no repeat', async () => {
  const model = 'mock/100t-40ms';
  const plain = await openPage(`${BASE}/`);
  await sendChat(plain, model);
  await waitText(plain, '#chat-status', 'done');
  const uninterrupted = await text(plain, '#chat-answer');
  assert.equal(uninterrupted, tokens(100), 'the mock model is deterministic');

  // The page goes through a relay that can cut its connections like a network drop.
  const cutter = await Cutter.start(BASE);
  try {
    const page = await openPage(`${cutter.url}/`);
    const subscriptions = recordSubscriptions(page);
    const id = await sendChat(page, model);

    // The page's own button: close the EventSource, reconnect with ?last_event_id=.
    await waitContains(page, '#chat-answer', 'tok8 ');
    await page.click('#chat-drop');
    await waitContains(page, '#chat-log', 'dropped the connection at id');
    await waitContains(page, '#chat-log', 'new connection, ?last_event_id=');

    // The network itself: every connection cut, the browser offline for a while, then back.
    // EventSource reconnects on its own and sends Last-Event-ID.
    await waitContains(page, '#chat-answer', 'tok40 ');
    allow(/Failed to load resource: net::ERR_(INCOMPLETE_CHUNKED_ENCODING|INTERNET_DISCONNECTED|CONNECTION_RESET|EMPTY_RESPONSE)/);
    await page.context().setOffline(true);
    assert.ok(cutter.cut() >= 1, 'the EventSource connection was open');
    await waitText(page, '#chat-connection', 'reconnecting');
    await page.waitForTimeout(800);
    await page.context().setOffline(false);
    await waitContains(page, '#chat-log', 'automatic reconnect, Last-Event-ID header');
    await waitText(page, '#chat-status', 'done');

    const resumed = await text(page, '#chat-answer');
    assertNoRepeats(resumed);
    assert.equal(resumed, uninterrupted, 'the same text as the uninterrupted run');
    assert.ok(Number(await text(page, '#chat-resumes')) >= 2, 'both resumes counted');
    const server = await status(BASE, id);
    assert.equal(Number(await text(page, '#chat-events')), server.event_count,
      'each event received exactly once');

    const requests = await subscriptions();
    assert.ok(requests.some((r) => r.query.get('last_event_id')),
      'the manual reconnect named its position in ?last_event_id=');
    assert.ok(requests.some((r) => r.lastEventId),
      "the browser's own reconnect sent Last-Event-ID");
    await shot(page, 'chat-resumed.png');
    if (DOCS_SCREENSHOT) await page.screenshot({ path: DOCS_SCREENSHOT, fullPage: true });
  } finally {
    await cutter.close();
  }
}, 45_000);

named('3. cancel stops a running answer', async () => {
  const page = await openPage(`${BASE}/`);
  const id = await sendChat(page, 'mock/300t-50ms');
  await waitContains(page, '#chat-answer', 'tok3 ');
  await page.click('#chat-cancel');
  await waitText(page, '#chat-status', 'cancelled');
  assert.ok(!(await text(page, '#chat-answer')).includes('tok300 '));
  assert.equal((await status(BASE, id)).status, 'cancelled');

  // While the next chat is being created (its POST held back here) there is nothing to
  // cancel: the chat before it is not what Cancel may post to.
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  await page.route((url) => url.pathname === '/v1/streams', async (route) => {
    await held;
    await route.continue();
  });
  await page.click('#chat-send');
  await waitText(page, '#chat-status', 'creating');
  assert.ok(await page.isDisabled('#chat-cancel'), 'no Cancel before the stream exists');
  assert.equal(await text(page, '#chat-stream-id'), '—');
  release();
  await page.waitForFunction(() => document.querySelector('#chat-stream-id').textContent.startsWith('st_'));
  const next = await text(page, '#chat-stream-id');
  assert.notEqual(next, id);
  await waitContains(page, '#chat-answer', 'tok2 ');
  await page.click('#chat-cancel');
  await waitText(page, '#chat-status', 'cancelled');
  assert.equal((await status(BASE, next)).status, 'cancelled');
});

named('4. the agent view shows every step of the publisher, joined late', async () => {
  const created = await createAgent(BASE);
  const link = `${BASE}/?view=agent&stream=${created.id}&token=${created.read_token}`;
  let page;
  // The viewer arrives once the agent is already into its second step, then tails it.
  await runAgent(BASE, created, 30, async (step) => {
    if (step !== 'search') return;
    page = await openPage(link);
    await waitText(page, '#agent-status', 'running');
  });
  await waitText(page, '#agent-status', 'completed');
  assert.notEqual(await text(page, '#agent-joined'), '(start)', 'joined mid-stream');
  assert.equal(new URL(page.url()).searchParams.get('token'), null, 'the token left the address bar');

  const server = await status(BASE, created.id);
  const expectedSteps = AGENT_STEPS.map((name) => ({ name, status: 'finished' }));
  assert.deepEqual(server.aggregate.steps, expectedSteps);
  for (const viewer of [page, await openPage(link)]) {
    const steps = await viewer.$$eval('#agent-steps li', (items) => items.map((li) => ({
      name: li.querySelector('.name').textContent,
      status: li.querySelector('.badge').textContent,
    })));
    assert.deepEqual(steps, expectedSteps);
    const tools = await viewer.$$eval('#agent-tools li', (items) => items.map((li) => [
      li.querySelector('.name').textContent, li.dataset.status,
      li.querySelector('.args').textContent,
    ]));
    assert.deepEqual(tools, server.aggregate.tool_calls.map((c) => [c.name, 'returned', c.arguments]));
    const state = await text(viewer, '#agent-state');
    for (const part of ['progress: 100', 'phase: "done"', '"eventsource-stream"', '"sse-stream"']) {
      assert.ok(state.includes(part), `state tree has ${part}: ${state}`);
    }
    assert.equal(await text(viewer, '#agent-messages .message .text'), AGENT_ANSWER);
    assert.equal(await text(viewer, '#agent-status'), 'completed');
  }
  await shot(page, 'agent.png');
});

named('4b. the agent view follows the real example publisher from the link it prints', async () => {
  // examples/agent_publisher.rs itself, not a copy of its events: the playground link it
  // prints is opened while it publishes.
  const publisher = spawn(AGENT_PUBLISHER, [BASE, '60'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => publisher.on('exit', (code) => resolve(code)));
  let out = '';
  const link = await new Promise((resolve, reject) => {
    publisher.stdout.on('data', (chunk) => {
      out += chunk;
      const found = out.match(/in a browser:\s+(\S+)/);
      if (found) resolve(found[1]);
    });
    exited.then((code) => reject(new Error(`agent_publisher exited (${code}) first: ${out}`)));
  });
  const page = await openPage(link);
  await waitText(page, '#agent-status', 'completed');
  assert.equal(await exited, 0, `agent_publisher failed: ${out}`);
  const id = new URL(link).searchParams.get('stream');
  const server = await status(BASE, id);
  assert.deepEqual(server.aggregate.steps.map((s) => s.name), ['plan', 'search', 'read', 'write']);
  const steps = await page.$$eval('#agent-steps li', (items) => items.map((li) => ({
    name: li.querySelector('.name').textContent,
    status: li.querySelector('.badge').textContent,
  })));
  assert.deepEqual(steps, server.aggregate.steps.map((s) => ({ name: s.name, status: 'finished' })));
  const tools = await page.$$eval('#agent-tools li', (items) => items.map((li) => li.querySelector('.name').textContent));
  assert.deepEqual(tools, server.aggregate.tool_calls.map((c) => c.name));
  assert.ok(tools.length > 0, 'the example calls tools');
  assert.equal(await text(page, '#agent-messages .message .text'), server.aggregate.messages[0].content);
  await shot(page, 'agent-example.png');
});

named('4c. the agent view: one tail per view, tool-call fragments by index, tests by value', async () => {
  const created = await createAgent(BASE);
  const page = await openPage(`${BASE}/?view=agent`);
  const warnings = [];
  page.on('console', (message) => {
    if (message.type() === 'warning') warnings.push(message.text());
  });

  // Watch pressed twice while the first join's status read is held back: the second join
  // tails the stream, and the first must give up rather than tail it a second time.
  let first = true;
  await page.route((url) => url.pathname === `/v1/streams/${created.id}`, async (route) => {
    if (first) {
      first = false;
      await new Promise((resolve) => { setTimeout(resolve, 500); });
    }
    await route.continue();
  });
  let answers = 0;
  page.on('requestfinished', (request) => {
    if (new URL(request.url()).pathname === `/v1/streams/${created.id}`) answers += 1;
  });
  await page.fill('#agent-stream', created.id);
  await page.fill('#agent-token', created.read_token);
  await page.click('#agent-form button[type="submit"]');
  await page.click('#agent-form button[type="submit"]');
  await waitText(page, '#agent-connection', 'open');
  while (answers < 2) await page.waitForTimeout(50);
  await page.waitForTimeout(300); // for the page to act on the held answer

  // A chat-style tool call: providers send its id with the first fragment only.
  await publishEvents(BASE, created, [
    { type: 'STATE_DELTA', delta: [{ op: 'add', path: '/where', value: { city: 'Paris', country: 'FR' } }] },
    { type: 'tool_call.delta', data: { index: 0, id: 'toolu_1', name: 'get_weather', arguments: '' } },
    { type: 'tool_call.delta', data: { index: 0, arguments: '{"city":' } },
    { type: 'tool_call.delta', data: { index: 0, arguments: '"Paris"}' } },
  ]);
  await waitContains(page, '#agent-tools', '"Paris"}');
  const tools = await page.$$eval('#agent-tools li', (items) => items.map((li) => [
    li.querySelector('.name').textContent, li.querySelector('.args').textContent,
  ]));
  assert.deepEqual(tools, [['get_weather', '{"city":"Paris"}']]);

  // RFC 6902 `test` compares values: the same members in another order match.
  await publishEvents(BASE, created, [
    {
      type: 'STATE_DELTA',
      delta: [
        { op: 'test', path: '/where', value: { country: 'FR', city: 'Paris' } },
        { op: 'replace', path: '/where/city', value: 'Lyon' },
      ],
    },
    { type: 'TEXT_MESSAGE_START', messageId: 'answer', role: 'assistant' },
    { type: 'TEXT_MESSAGE_CONTENT', messageId: 'answer', delta: 'Sunny in Lyon.' },
    { type: 'TEXT_MESSAGE_END', messageId: 'answer' },
    { type: 'RUN_FINISHED', threadId: 'weather-1', runId: created.id },
  ]);
  await waitText(page, '#agent-status', 'completed');
  assert.ok((await text(page, '#agent-state')).includes('city: "Lyon"'));
  assert.deepEqual(warnings.filter((w) => w.includes('rejoining')), [], 'no rejoin was needed');
  assert.equal(await text(page, '#agent-messages .message .text'), 'Sunny in Lyon.');
  const server = await status(BASE, created.id);
  assert.equal(Number(await text(page, '#agent-events')), server.event_count,
    'each event received once');
  assert.deepEqual(tools, server.aggregate.tool_calls.map((c) => [c.name, c.arguments]));
});

named('5. the transcription view shows a live feed\'s captions', async () => {
  const feed = await Feed.create(BASE, 'mock/default');
  const first = (await feed.segment(1000)).trim();
  assert.ok(first.length > 0, 'the mock transcribed the first segment');
  const page = await openPage(`${BASE}/?view=feed&stream=${feed.id}&token=${feed.readToken}`);
  await waitText(page, '#feed-status', 'running');
  await waitContains(page, '#feed-earlier', first);

  const second = (await feed.segment(1500)).trim();
  await waitContains(page, '#feed-captions .caption[data-segment="1"]', second);
  await feed.finish();
  await waitText(page, '#feed-status', 'completed');
  assert.equal(await text(page, '#feed-segments'), '2');
  const server = await status(BASE, feed.id);
  const shown = `${await text(page, '#feed-earlier')} ${await text(page, '#feed-captions')}`;
  const words = (t) => t.split(/\s+/).filter(Boolean).join(' ');
  assert.equal(words(shown), words(server.aggregate.transcript));
  await shot(page, 'transcription.png');
});

named('6. with keys on, the page asks for one and then uses it', async () => {
  allow(/status of 401/);
  const page = await openPage(`${KEYED}/`);
  await waitContains(page, '#error', 'API key');

  const modelLists = [];
  page.on('request', (r) => { if (new URL(r.url()).pathname === '/v1/models') modelLists.push(r); });
  await page.fill('#api-key', KEY);
  await page.press('#api-key', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('#chat-model option').length > 2);
  assert.equal(await page.isHidden('#error'), true);
  await page.press('#api-key', 'Enter');
  await page.waitForTimeout(200);
  assert.equal(modelLists.length, 1, 'one model list per new key (Enter is change + submit)');
  const subscriptions = recordSubscriptions(page);
  await sendChat(page, 'mock/20t-10ms');
  await waitText(page, '#chat-status', 'done');
  assert.equal(await text(page, '#chat-answer'), tokens(20));
  const requests = await subscriptions();
  assert.ok(requests.length > 0 && requests.every((r) => r.query.get('token')?.startsWith('rt_')),
    'EventSource reads with the read token');

  await sendChat(page, 'mock/300t-50ms');
  await waitContains(page, '#chat-answer', 'tok2 ');
  await page.click('#chat-cancel');
  await waitText(page, '#chat-status', 'cancelled');

  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await page.inputValue('#api-key'), KEY, 'the key is remembered');
  await shot(page, 'keys.png');
});

named('7. narrow screens, keyboard use and labels', async () => {
  const page = await openPage(`${BASE}/`, { viewport: { width: 360, height: 780 } });
  const unlabelled = await page.$$eval('input, select, textarea',
    (els) => els.filter((el) => el.type !== 'hidden' && el.labels.length === 0).map((el) => el.id));
  assert.deepEqual(unlabelled, []);
  assert.equal(await page.getAttribute('#chat-answer', 'aria-live'), 'polite');

  await page.focus('#tab-chat');
  for (const [key, tab] of [['ArrowRight', 'agent'], ['ArrowRight', 'feed'], ['Home', 'chat'],
    ['ArrowLeft', 'feed'], ['End', 'feed'], ['ArrowRight', 'chat']]) {
    await page.keyboard.press(key);
    assert.equal(await page.evaluate(() => document.activeElement.id), `tab-${tab}`, key);
    assert.equal(await page.getAttribute(`#tab-${tab}`, 'aria-selected'), 'true');
    assert.equal(await page.isVisible(`#view-${tab}`), true);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${tab} view fits a 360px screen (overflow ${overflow}px)`);
  }

  // Send with the keyboard alone.
  await page.focus('#chat-message');
  await page.keyboard.press('Control+Enter');
  await waitText(page, '#chat-status', 'done');
  await shot(page, 'narrow-chat.png');
  for (const tab of ['agent', 'feed']) {
    await page.click(`#tab-${tab}`);
    await shot(page, `narrow-${tab}.png`);
  }
});

/** Each tool call the chat view lists: its name, id and arguments, in the list's order. */
const shownTools = (page) => page.$$eval('#chat-tools li', (items) => items.map((li) => ({
  name: li.querySelector('.name').textContent,
  id: li.querySelector('.call-id').textContent,
  arguments: li.querySelector('.args').textContent,
})));

named('9. a refusal from the OpenAI provider shows as a refusal, not an empty answer', async () => {
  const expected = fixture('refusal');
  const page = await openPage(`${BASE}/`);
  assert.equal(await page.isHidden('#chat-refusal-box'), true, 'no refusal block before one');
  const id = await sendChat(page, 'openai/refusal', 'Tell me something you will not.');
  await waitText(page, '#chat-status', 'done');
  assert.equal(await text(page, '#chat-refusal'), expected.refusal);
  assert.equal(await page.isVisible('#chat-refusal'), true, 'the refusal is shown');
  assert.equal(await text(page, '#chat-refusal-title'), 'Refusal');
  assert.equal(await text(page, '#chat-answer'), expected.text, 'no answer text');
  assert.equal(await page.isHidden('#chat-tools-box'), true, 'no tool calls');

  const server = await status(BASE, id);
  assert.equal(server.status, 'completed');
  assert.equal(server.aggregate.refusal, expected.refusal, 'the page shows what the server kept');
  assert.equal(server.aggregate.finish_reason, expected.finish_reason);
  assert.equal(Number(await text(page, '#chat-events')), server.event_count);
  // Through the real provider: the prefix removed, streamed with usage, with the upstream key.
  const sent = (await upstreamRequests()).at(-1);
  assert.deepEqual(sent, { model: 'refusal', stream: true, include_usage: true, messages: 1, authorized: true });
  await shot(page, 'chat-refusal.png');

  // The next chat starts with no refusal.
  await sendChat(page, 'mock/3t-0ms');
  await waitText(page, '#chat-status', 'done');
  assert.equal(await page.isHidden('#chat-refusal-box'), true, 'a new chat hides the refusal');
  assert.equal(await text(page, '#chat-refusal'), '');
  assert.equal(await text(page, '#chat-answer'), tokens(3));
});

named('10. parallel tool calls stream in by index, as the server aggregates them', async () => {
  const expected = fixture('parallel_tools');
  const page = await openPage(`${BASE}/`);
  assert.equal(await page.isHidden('#chat-tools-box'), true, 'no tool list before a call');
  // Every state the list goes through: the page updates it once per event.
  await page.evaluate(() => {
    window.toolStates = [];
    new MutationObserver(() => {
      window.toolStates.push([...document.querySelectorAll('#chat-tools li .args')].map((a) => a.textContent));
    }).observe(document.getElementById('chat-tools'), { subtree: true, childList: true, characterData: true });
  });
  const id = await sendChat(page, 'openai/parallel_tools', 'The weather in Paris and Tokyo?');
  await waitText(page, '#chat-status', 'done');

  const shown = await shownTools(page);
  const server = await status(BASE, id);
  const calls = (list) => list.map((c) => ({ name: c.name, id: c.id, arguments: c.arguments }));
  assert.deepEqual(shown, calls(server.aggregate.tool_calls), 'the page shows what the server kept');
  assert.deepEqual(shown, calls(expected.tool_calls), 'and what the fixture holds');
  assert.equal(server.aggregate.finish_reason, expected.finish_reason);
  assert.equal(await page.isVisible('#chat-tools-box'), true);
  assert.equal(await text(page, '#chat-answer'), expected.text, 'no answer text');
  assert.equal(await page.isHidden('#chat-refusal-box'), true, 'no refusal');
  assert.equal(Number(await text(page, '#chat-events')), server.event_count);

  // The arguments grew fragment by fragment: the first call was part-way before the second
  // began (index 1 starts only once index 0 is complete).
  const states = await page.evaluate(() => window.toolStates);
  const first = expected.tool_calls[0].arguments;
  assert.ok(states.some((s) => s.length === 1 && s[0].length > 0 && s[0] !== first),
    `arguments streamed in: ${JSON.stringify(states)}`);
  assert.ok(states.some((s) => s.length === 2 && s[0] === first && s[1] === ''),
    `the second call joined once the first was whole: ${JSON.stringify(states)}`);

  // Long call ids and arguments fit a narrow screen.
  await page.setViewportSize({ width: 360, height: 780 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the tool list fits a 360px screen (overflow ${overflow}px)`);
  await shot(page, 'chat-tools.png');

  // The next chat starts with no tool calls.
  await sendChat(page, 'mock/3t-0ms');
  await waitText(page, '#chat-status', 'done');
  assert.equal(await page.isHidden('#chat-tools-box'), true, 'a new chat hides the tool list');
  assert.deepEqual(await shownTools(page), []);
});

named('11. reasoning from the OpenAI provider shows apart from the answer', async () => {
  const expected = fixture('reasoning_content');
  const page = await openPage(`${BASE}/`);
  const id = await sendChat(page, 'openai/reasoning_content', 'What is 2+2?');
  await waitText(page, '#chat-status', 'done');
  const server = await status(BASE, id);
  assert.equal(await text(page, '#chat-answer'), expected.text);
  assert.equal(server.aggregate.choices[0].text, expected.text);
  assert.equal(await page.isVisible('#chat-reasoning-box'), true, 'the reasoning box is shown');
  await page.click('#chat-reasoning-box summary');
  assert.equal(await page.isVisible('#chat-reasoning'), true, 'and opens');
  assert.equal(await text(page, '#chat-reasoning'), expected.reasoning);
  assert.equal(server.aggregate.reasoning, expected.reasoning);
  const usage = expected.usage;
  assert.equal(await text(page, '#chat-usage'), `${usage.input_tokens} in, ${usage.output_tokens} out`);
  assert.equal(await page.isHidden('#chat-refusal-box'), true);
  assert.equal(await page.isHidden('#chat-tools-box'), true);
  await shot(page, 'chat-reasoning.png');
});

named('12. no page logged an error', async () => {
  const unexpected = errors.filter((e) => !e.expected);
  assert.deepEqual(unexpected, [], 'console errors and uncaught exceptions');
});
