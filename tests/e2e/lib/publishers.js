// What drives the streams the playground shows, from node over plain fetch: an agent that
// publishes like examples/agent_publisher.rs, and a live captions source like
// examples/live_captions.rs. Both talk to the server directly, never through the page.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function call(base, method, path, { body, bearer, contentType } = {}) {
  const headers = {};
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (contentType) headers['content-type'] = contentType;
  const response = await fetch(`${base}${path}`, { method, headers, body });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

const json = (value) => ({ body: JSON.stringify(value), contentType: 'application/json' });

/** Publishes `events` (one or an array, native or AG-UI) into the agent stream `created`. */
export function publishEvents(base, created, events) {
  const path = `/v1/streams/${created.id}/events`;
  return call(base, 'POST', path, { ...json(events), bearer: created.write_token });
}

/** The steps the simulated agent runs, in order. */
export const AGENT_STEPS = ['plan', 'search', 'read', 'write'];
export const AGENT_ANSWER = 'Two crates parse SSE well: eventsource-stream wraps any byte stream, '
  + 'and sse-stream does the same with a smaller API. Both handle split UTF-8 and CRLF.';

/** Creates an agent stream; answers its id and tokens. */
export async function createAgent(base) {
  const state = { question: 'Which Rust crates parse SSE?', progress: 0, phase: 'starting', sources: [] };
  return call(base, 'POST', '/v1/streams', json({ kind: 'agent', name: 'research-agent', state }));
}

/**
 * Publishes the research agent's run into `created` (the creation answer), `paceMs` apart,
 * as examples/agent_publisher.rs does; `onStep(name)` is called as each step starts.
 */
export async function runAgent(base, created, paceMs, onStep = () => {}) {
  const { id } = created;
  const publish = async (events) => {
    await sleep(paceMs);
    return publishEvents(base, created, events);
  };
  const step = async (name, started) => {
    if (started) await onStep(name);
    await publish({ type: started ? 'STEP_STARTED' : 'STEP_FINISHED', stepName: name });
  };
  const progress = (percent, phase) => publish({
    type: 'STATE_DELTA',
    delta: [
      { op: 'replace', path: '/progress', value: percent },
      { op: 'replace', path: '/phase', value: phase },
    ],
  });
  const tool = async (callId, name, args, result) => {
    await publish({ type: 'TOOL_CALL_START', toolCallId: callId, toolCallName: name });
    const text = JSON.stringify(args);
    const half = Math.floor(text.length / 2);
    for (const fragment of [text.slice(0, half), text.slice(half)]) {
      await publish({ type: 'TOOL_CALL_ARGS', toolCallId: callId, delta: fragment });
    }
    await publish([
      { type: 'TOOL_CALL_END', toolCallId: callId },
      { type: 'TOOL_CALL_RESULT', messageId: `${callId}-result`, toolCallId: callId, content: result, role: 'tool' },
    ]);
  };

  await publish({ type: 'RUN_STARTED', threadId: 'research-1', runId: id });
  await step('plan', true);
  await publish([
    { type: 'REASONING_MESSAGE_START', messageId: 'plan-notes', role: 'reasoning' },
    { type: 'REASONING_MESSAGE_CONTENT', messageId: 'plan-notes', delta: 'Search crates.io, read the two most used, compare.' },
    { type: 'REASONING_MESSAGE_END', messageId: 'plan-notes' },
  ]);
  await progress(10, 'planned');
  await step('plan', false);

  await step('search', true);
  await tool('call-search', 'web_search', { query: 'rust sse parser crate' }, '["eventsource-stream","sse-stream"]');
  const add = (name) => ({ op: 'add', path: '/sources/-', value: name });
  await publish({ type: 'STATE_DELTA', delta: [add('eventsource-stream'), add('sse-stream')] });
  await progress(40, 'searched');
  await step('search', false);

  await step('read', true);
  for (const [n, source] of ['eventsource-stream', 'sse-stream'].entries()) {
    await tool(`call-fetch-${n}`, 'fetch_docs', { crate: source }, `${source}: parses text/event-stream into events`);
    await progress(50 + 15 * n, 'reading');
  }
  await step('read', false);

  await step('write', true);
  await publish({ type: 'TEXT_MESSAGE_START', messageId: 'answer', role: 'assistant' });
  for (const word of AGENT_ANSWER.match(/[^ ]+ ?/g)) {
    await publish({ type: 'TEXT_MESSAGE_CONTENT', messageId: 'answer', delta: word });
  }
  await publish({ type: 'TEXT_MESSAGE_END', messageId: 'answer' });
  await step('write', false);
  await publish({ type: 'usage', data: { input_tokens: 812, output_tokens: 164, total_tokens: 976 } });
  await progress(100, 'done');
  return publish({ type: 'RUN_FINISHED', threadId: 'research-1', runId: id, result: { sources: 2 } });
}

/** `millis` of a 16 kHz mono 16-bit WAV tone. */
export function wav(millis) {
  const samples = 16 * millis;
  const buffer = Buffer.alloc(44 + samples * 2);
  buffer.write('RIFF', 0);
  buffer.writeUInt32LE(36 + samples * 2, 4);
  buffer.write('WAVEfmt ', 8);
  buffer.writeUInt32LE(16, 16);
  buffer.writeUInt16LE(1, 20); // PCM
  buffer.writeUInt16LE(1, 22); // mono
  buffer.writeUInt32LE(16000, 24);
  buffer.writeUInt32LE(32000, 28);
  buffer.writeUInt16LE(2, 32);
  buffer.writeUInt16LE(16, 34);
  buffer.write('data', 36);
  buffer.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i += 1) {
    buffer.writeInt16LE(Math.round(Math.sin((i * 440 * 2 * Math.PI) / 16000) * 3000), 44 + i * 2);
  }
  return buffer;
}

/** A live captions feed: create it, send numbered segments, finish it. */
export class Feed {
  static async create(base, model) {
    const created = await call(base, 'POST', '/v1/streams', json({ kind: 'transcription', model, language: 'en' }));
    return new Feed(base, created);
  }

  constructor(base, created) {
    this.base = base;
    this.id = created.id;
    this.readToken = created.read_token;
    this.writeToken = created.write_token;
    this.next = 0;
  }

  /** Sends one segment of `millis` of audio; answers the words it was transcribed to. */
  async segment(millis) {
    const n = this.next;
    this.next += 1;
    const answer = await call(this.base, 'POST', `/v1/streams/${this.id}/audio?segment=${n}`, {
      body: wav(millis),
      contentType: 'audio/wav',
      bearer: this.writeToken,
    });
    return answer.text;
  }

  finish() {
    return call(this.base, 'POST', `/v1/streams/${this.id}/finish`, { bearer: this.writeToken });
  }
}

/** `GET /v1/streams/{id}` as the server sees it. */
export function status(base, id, bearer) {
  return call(base, 'GET', `/v1/streams/${id}`, { bearer });
}
