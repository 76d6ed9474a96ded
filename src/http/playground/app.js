// The tokenrelay playground: plain browser JavaScript, no build step, no dependencies.
// It is a client of the public API like any other: fetch to create and inspect streams,
// EventSource to read them (with `?token=` read tokens, since EventSource sends no headers).
// Streams are read in the native format (SPEC §4); resume ids are treated as opaque.

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------
// The API key: optional, kept in localStorage, sent on fetch calls only.

const KEY_STORE = 'tokenrelay.apiKey';

function storedKey() {
  try {
    return localStorage.getItem(KEY_STORE) || '';
  } catch {
    // Storage can be refused (privacy settings); the key then lives in the input only.
    return $('api-key').value.trim();
  }
}

function storeKey(value) {
  try {
    if (value) localStorage.setItem(KEY_STORE, value);
    else localStorage.removeItem(KEY_STORE);
  } catch {
    // See storedKey.
  }
}

/** A refusal from the API, with its stable error code. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** One JSON call; `credential` replaces the API key (a stream's write token, say). */
async function api(method, path, body, credential) {
  const headers = {};
  const bearer = storedKey() || credential;
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', `cannot reach the server: ${e.message}`);
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: reported below with the status.
  }
  if (!response.ok) {
    const error = (json && json.error) || {};
    throw new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || `${method} ${path} answered ${response.status}`);
  }
  return json;
}

function showError(error) {
  const box = $('error');
  if (!error) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  let text = error.message || String(error);
  if (error.code === 'missing_api_key' || error.code === 'invalid_api_key') {
    text += ' Enter a client API key at the top of the page.';
  }
  box.textContent = error.code ? `${text} (${error.code})` : text;
  box.hidden = false;
}

// ---------------------------------------------------------------------------------------
// Tail: one stream read over EventSource, resumed by id.

const NATIVE_TYPES = [
  'stream.started', 'message.delta', 'refusal.delta', 'reasoning.delta', 'tool_call.delta',
  'usage', 'custom', 'reset', 'run.started', 'step.started', 'step.finished',
  'state.snapshot', 'state.delta', 'message.started', 'message.finished',
  'tool_call.started', 'tool_call.args', 'tool_call.finished', 'tool_call.result',
  'transcript.delta', 'transcript.done', 'stream.completed', 'stream.failed',
  'stream.cancelled',
];
const TERMINAL = new Set(['stream.completed', 'stream.failed', 'stream.cancelled']);

/**
 * Reads `/v1/streams/{id}/events` from a position, tells `onEvent` each event and
 * `onConnection` each change of the connection, and counts resumes. The browser's own
 * reconnects send `Last-Event-ID` themselves; a reconnect after `drop()` is a new
 * EventSource, which cannot set that header, so it sends `?last_event_id=`.
 */
class Tail {
  constructor(streamId, token, { onEvent, onConnection, onResume }) {
    this.streamId = streamId;
    this.token = token;
    this.onEvent = onEvent;
    this.onConnection = onConnection;
    this.onResume = onResume;
    this.lastId = null;
    this.events = 0;
    this.resumes = 0;
    this.source = null;
    this.ended = false;
    this.dropTimer = null;
  }

  url(position) {
    const query = new URLSearchParams({ format: 'native' });
    if (this.token) query.set('token', this.token);
    if (position) query.set('last_event_id', position);
    return `/v1/streams/${encodeURIComponent(this.streamId)}/events?${query}`;
  }

  /** Opens a connection after `position` (null: from the start). */
  open(position, manualResume) {
    this.lastId = position;
    const source = new EventSource(this.url(position));
    this.source = source;
    let opened = 0;
    let heldWhenLost = position;
    source.onopen = () => {
      opened += 1;
      if (opened > 1) this.resumed(heldWhenLost, 'automatic reconnect, Last-Event-ID header');
      else if (manualResume) this.resumed(position, 'new connection, ?last_event_id=');
      this.onConnection('open');
    };
    source.onerror = () => {
      if (source !== this.source || this.ended) return;
      heldWhenLost = this.lastId;
      if (source.readyState === EventSource.CLOSED) {
        // A non-200 answer: EventSource gives up. The status document says why.
        this.onConnection('refused');
        this.onEvent({ type: 'connection.refused', id: this.lastId, data: {} });
      } else {
        this.onConnection('reconnecting');
      }
    };
    for (const type of NATIVE_TYPES) {
      source.addEventListener(type, (message) => this.deliver(source, type, message));
    }
  }

  deliver(source, type, message) {
    if (source !== this.source) return;
    let data = {};
    try {
      data = JSON.parse(message.data);
    } catch {
      // SPEC §6: data is one-line JSON; anything else is shown as text.
      data = { text: message.data };
    }
    if (message.lastEventId) this.lastId = message.lastEventId;
    this.events += 1;
    this.onEvent({ type, id: message.lastEventId, data });
    if (TERMINAL.has(type)) {
      // The server closes after the terminal event; without this the browser would
      // reconnect and get 204.
      this.ended = true;
      this.close();
      this.onConnection('closed (stream ended)');
    }
  }

  resumed(at, how) {
    this.resumes += 1;
    this.onResume(at, how);
  }

  /** Cuts the connection as a network blip would, then resumes after `pauseMs`. */
  drop(pauseMs) {
    if (!this.source || this.ended) return;
    this.close();
    const at = this.lastId;
    this.onConnection('dropped');
    this.dropTimer = setTimeout(() => {
      this.dropTimer = null;
      if (!this.ended) this.open(at, true);
    }, pauseMs);
    return at;
  }

  close() {
    if (this.source) this.source.close();
    this.source = null;
    if (this.dropTimer) clearTimeout(this.dropTimer);
    this.dropTimer = null;
  }

  /** Stops for good (the view moves on to another stream). */
  stop() {
    this.ended = true;
    this.close();
  }
}

function logLine(list, text) {
  const item = document.createElement('li');
  const time = new Date().toLocaleTimeString();
  item.textContent = `${time} ${text}`;
  list.append(item);
  while (list.children.length > 50) list.firstElementChild.remove();
}

function setStatus(element, status) {
  element.textContent = status;
  element.dataset.status = status;
}

function formatUsage(usage) {
  if (!usage) return '—';
  return `${usage.input_tokens} in, ${usage.output_tokens} out`;
}

// ---------------------------------------------------------------------------------------
// Chat view.

const chat = {
  tail: null,
  streamId: null,
  readToken: null,
  writeToken: null,
  text: null,
  reasoning: null,
};

function chatModel() {
  const chosen = $('chat-model').value;
  return chosen || $('chat-custom-model').value.trim();
}

function chatRunning(running) {
  $('chat-send').disabled = running;
  $('chat-drop').disabled = !running;
  $('chat-cancel').disabled = !running;
  $('chat-answer').setAttribute('aria-busy', String(running));
}

function chatFacts() {
  const tail = chat.tail;
  $('chat-events').textContent = tail ? String(tail.events) : '0';
  $('chat-last-id').textContent = (tail && tail.lastId) || '—';
  $('chat-resumes').textContent = tail ? String(tail.resumes) : '0';
}

function chatEvent(event) {
  const { type, data } = event;
  switch (type) {
    case 'stream.started':
      setStatus($('chat-status'), 'running');
      break;
    case 'message.delta':
      if ((data.index || 0) === 0) chat.text.appendData(data.text || '');
      break;
    case 'reasoning.delta':
      $('chat-reasoning-box').hidden = false;
      chat.reasoning.appendData(data.text || '');
      break;
    case 'usage':
      $('chat-usage').textContent = formatUsage(data);
      break;
    case 'reset':
      // The position could not be used; the server replays what it kept from the start.
      chat.text.data = '';
      chat.reasoning.data = '';
      logLine($('chat-log'), `reset (${data.reason}): replaying from the start`);
      break;
    case 'stream.completed':
      setStatus($('chat-status'), 'done');
      if (data.usage) $('chat-usage').textContent = formatUsage(data.usage);
      chatRunning(false);
      break;
    case 'stream.failed':
      setStatus($('chat-status'), 'failed');
      logLine($('chat-log'), `failed: ${data.error ? data.error.message : 'unknown error'}`);
      chatRunning(false);
      break;
    case 'stream.cancelled':
      setStatus($('chat-status'), 'cancelled');
      logLine($('chat-log'), `cancelled (${data.reason})`);
      chatRunning(false);
      break;
    case 'connection.refused':
      chatRunning(false);
      refreshChatStatus();
      break;
    default:
      break;
  }
  chatFacts();
}

async function refreshChatStatus() {
  if (!chat.streamId) return;
  try {
    const status = await api('GET', streamPath(chat.streamId, chat.readToken));
    setStatus($('chat-status'), status.status === 'completed' ? 'done' : status.status);
  } catch (e) {
    showError(e);
  }
}

function streamPath(id, token) {
  const query = token ? `?${new URLSearchParams({ token })}` : '';
  return `/v1/streams/${encodeURIComponent(id)}${query}`;
}

async function sendChat(event) {
  event.preventDefault();
  showError(null);
  const model = chatModel();
  const message = $('chat-message').value.trim();
  if (!model) {
    showError(new Error('Choose a model or type a model name.'));
    return;
  }
  if (!message) {
    showError(new Error('Type a message first.'));
    return;
  }
  if (chat.tail) chat.tail.stop();
  chat.tail = null;
  $('chat-answer').replaceChildren();
  chat.text = document.createTextNode('');
  $('chat-answer').append(chat.text);
  chat.reasoning = document.createTextNode('');
  $('chat-reasoning').replaceChildren(chat.reasoning);
  $('chat-reasoning-box').hidden = true;
  $('chat-question').textContent = message;
  $('chat-question').hidden = false;
  $('chat-log').replaceChildren();
  $('chat-usage').textContent = '—';
  setStatus($('chat-status'), 'creating');
  chatRunning(true);
  $('chat-drop').disabled = true;
  let created;
  try {
    created = await api('POST', '/v1/streams', {
      kind: 'chat',
      request: { model, messages: [{ role: 'user', content: message }] },
    });
  } catch (e) {
    setStatus($('chat-status'), 'error');
    chatRunning(false);
    showError(e);
    return;
  }
  chat.streamId = created.id;
  chat.readToken = created.read_token;
  chat.writeToken = created.write_token;
  $('chat-stream-id').textContent = created.id;
  setStatus($('chat-status'), 'running');
  chat.tail = new Tail(created.id, created.read_token, {
    onEvent: chatEvent,
    onConnection: (state) => {
      $('chat-connection').textContent = state;
    },
    onResume: (at, how) => {
      logLine($('chat-log'), `resumed at id ${at || '(start)'}: ${how}`);
      chatFacts();
    },
  });
  chat.tail.open(null, false);
  $('chat-drop').disabled = false;
  chatFacts();
}

function dropChat() {
  if (!chat.tail) return;
  const at = chat.tail.drop(700);
  if (at !== undefined) logLine($('chat-log'), `dropped the connection at id ${at || '(start)'}`);
}

async function cancelChat() {
  if (!chat.streamId) return;
  $('chat-cancel').disabled = true;
  try {
    // Cancelling takes the owner's key, or the write token when there is no key.
    await api('POST', `/v1/streams/${encodeURIComponent(chat.streamId)}/cancel`, undefined,
      chat.writeToken);
  } catch (e) {
    showError(e);
    $('chat-cancel').disabled = false;
  }
}

async function loadModels() {
  const select = $('chat-model');
  let models;
  try {
    const list = await api('GET', '/v1/models');
    models = list.data.map((m) => m.id);
  } catch (e) {
    showError(e);
    return;
  }
  const previous = select.value;
  const other = select.querySelector('option[value=""]');
  select.replaceChildren();
  for (const id of models) {
    const option = document.createElement('option');
    option.value = id;
    option.textContent = id;
    select.append(option);
  }
  select.append(other);
  const mock = models.find((id) => id === 'mock/default') || models.find((id) => id.startsWith('mock/'));
  select.value = models.includes(previous) ? previous : (mock || models[0] || '');
  $('chat-custom-field').hidden = select.value !== '';
}

// ---------------------------------------------------------------------------------------
// JSON Patch (RFC 6902), for agent state deltas. The server applies each patch before it
// appends it, so a patch that fails here means the view missed something: it rejoins.

function pointer(path) {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new Error(`bad JSON pointer ${path}`);
  return path.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

function getAt(doc, tokens) {
  let node = doc;
  for (const t of tokens) {
    if (node === null || typeof node !== 'object' || !(t in node)) {
      throw new Error(`no value at /${tokens.join('/')}`);
    }
    node = node[t];
  }
  return node;
}

function applyPatch(doc, patch) {
  let root = clone(doc);
  for (const op of patch) {
    const tokens = pointer(op.path);
    const parentOf = () => getAt(root, tokens.slice(0, -1));
    const last = tokens[tokens.length - 1];
    const put = (value) => {
      if (tokens.length === 0) {
        root = value;
        return;
      }
      const parent = parentOf();
      if (Array.isArray(parent)) {
        const index = last === '-' ? parent.length : Number(last);
        if (!(index >= 0 && index <= parent.length)) throw new Error(`bad index ${last}`);
        parent.splice(index, 0, value);
      } else if (parent !== null && typeof parent === 'object') {
        parent[last] = value;
      } else {
        throw new Error(`cannot add under ${op.path}`);
      }
    };
    const remove = () => {
      const parent = parentOf();
      getAt(root, tokens);
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
    };
    switch (op.op) {
      case 'add':
        put(clone(op.value));
        break;
      case 'remove':
        remove();
        break;
      case 'replace':
        if (tokens.length === 0) root = clone(op.value);
        else {
          getAt(root, tokens);
          const parent = parentOf();
          parent[Array.isArray(parent) ? Number(last) : last] = clone(op.value);
        }
        break;
      case 'move': {
        const value = getAt(root, pointer(op.from));
        const from = pointer(op.from);
        const fromParent = getAt(root, from.slice(0, -1));
        const fromLast = from[from.length - 1];
        if (Array.isArray(fromParent)) fromParent.splice(Number(fromLast), 1);
        else delete fromParent[fromLast];
        put(value);
        break;
      }
      case 'copy':
        put(clone(getAt(root, pointer(op.from))));
        break;
      case 'test':
        if (JSON.stringify(getAt(root, tokens)) !== JSON.stringify(op.value)) {
          throw new Error(`test failed at ${op.path}`);
        }
        break;
      default:
        throw new Error(`unknown op ${op.op}`);
    }
  }
  return root;
}

// ---------------------------------------------------------------------------------------
// A JSON value as a tree of native disclosure widgets (keyboard use comes with them).

function renderTree(container, value, collapsed) {
  const build = (key, node, path) => {
    const item = document.createElement('li');
    if (node !== null && typeof node === 'object') {
      const details = document.createElement('details');
      details.open = !collapsed.has(path);
      details.addEventListener('toggle', () => {
        if (details.open) collapsed.delete(path);
        else collapsed.add(path);
      });
      const summary = document.createElement('summary');
      const size = Array.isArray(node) ? `[${node.length}]` : `{${Object.keys(node).length}}`;
      summary.append(keyLabel(key), ` ${size}`);
      const list = document.createElement('ul');
      for (const [k, v] of Object.entries(node)) list.append(build(k, v, `${path}/${k}`));
      details.append(summary, list);
      item.append(details);
    } else {
      const span = document.createElement('span');
      span.className = `value ${node === null ? 'null' : typeof node}`;
      span.textContent = JSON.stringify(node);
      item.append(keyLabel(key), ': ', span);
    }
    return item;
  };
  const keyLabel = (key) => {
    const span = document.createElement('span');
    span.className = 'key';
    span.textContent = key;
    return span;
  };
  const list = document.createElement('ul');
  list.className = 'root';
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) list.append(build(k, v, `/${k}`));
  } else if (value !== undefined) {
    list.append(build('state', value, ''));
  }
  container.replaceChildren(list);
}

// ---------------------------------------------------------------------------------------
// Joining a running stream late: the status document's aggregate, then the events after
// its last_event_id (the aggregate is exactly the events up to that id).

/** Reads the status, hands it to `render`, then tails from its `last_event_id`. */
async function join(view, streamId, token, render, onEvent) {
  if (view.tail) view.tail.stop();
  view.tail = null;
  view.streamId = streamId;
  view.token = token;
  const status = await api('GET', streamPath(streamId, token));
  render(status);
  view.facts();
  if (status.status !== 'running') {
    view.connection('not needed: the stream has ended');
    return;
  }
  const tail = new Tail(streamId, token, {
    onEvent: (event) => {
      onEvent(event);
      view.facts();
    },
    onConnection: (state) => view.connection(state),
    onResume: (at, how) => {
      view.resumed(at, how);
      view.facts();
    },
  });
  view.tail = tail;
  tail.open(status.last_event_id, false);
}

/** A rejoin after the tail met something it cannot continue from (a reset, a bad patch). */
function rejoin(view, reason, start) {
  console.warn(`rejoining ${view.streamId}: ${reason}`);
  if (view.tail) view.tail.stop();
  start(view.streamId, view.token).catch(showError);
}

// ---------------------------------------------------------------------------------------
// Agent view.

const agent = {
  tail: null,
  streamId: null,
  token: null,
  state: {},
  collapsed: new Set(),
  steps: [],
  tools: new Map(),
  messages: new Map(),
  reasoning: null,
  eventsBeforeTail: 0,
  facts() {
    $('agent-events').textContent = String(agent.eventsBeforeTail + (agent.tail ? agent.tail.events : 0));
    $('agent-resumes').textContent = agent.tail ? String(agent.tail.resumes) : '0';
  },
  connection(state) {
    $('agent-connection').textContent = state;
  },
  resumed() {},
};

function stepItem(step) {
  const item = document.createElement('li');
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = step.name;
  const badge = document.createElement('span');
  badge.className = 'badge';
  item.append(name, ' ', badge);
  step.element = item;
  paintStep(step);
  return item;
}

function paintStep(step) {
  step.element.dataset.status = step.status;
  step.element.querySelector('.badge').textContent = step.status;
}

function agentStep(name, started) {
  if (started) {
    const step = { name, status: 'running' };
    agent.steps.push(step);
    $('agent-steps').append(stepItem(step));
    return;
  }
  const running = [...agent.steps].reverse().find((s) => s.name === name && s.status === 'running');
  if (running) {
    running.status = 'finished';
    paintStep(running);
  } else {
    const step = { name, status: 'finished' };
    agent.steps.push(step);
    $('agent-steps').append(stepItem(step));
  }
}

function toolItem(call) {
  const item = document.createElement('li');
  item.className = 'tool';
  const head = document.createElement('div');
  head.className = 'tool-head';
  const name = document.createElement('span');
  name.className = 'name';
  const badge = document.createElement('span');
  badge.className = 'badge';
  head.append(name, ' ', badge);
  const args = document.createElement('pre');
  args.className = 'args';
  const result = document.createElement('pre');
  result.className = 'result';
  item.append(head, args, result);
  call.element = item;
  paintTool(call);
  return item;
}

function paintTool(call) {
  const el = call.element;
  el.querySelector('.name').textContent = call.name || call.id;
  const status = call.result !== undefined && call.result !== null ? 'returned'
    : call.finished ? 'called' : 'streaming';
  el.dataset.status = status;
  el.querySelector('.badge').textContent = status;
  el.querySelector('.args').textContent = call.arguments || '';
  const result = el.querySelector('.result');
  result.hidden = call.result === undefined || call.result === null;
  result.textContent = call.result ? `→ ${call.result}` : '';
}

function agentTool(id, change) {
  let call = agent.tools.get(id);
  if (!call) {
    call = { id, name: '', arguments: '', result: undefined, finished: false };
    agent.tools.set(id, call);
    $('agent-tools').append(toolItem(call));
  }
  change(call);
  paintTool(call);
}

function agentMessage(id, role) {
  let message = agent.messages.get(id);
  if (!message) {
    const box = document.createElement('div');
    box.className = 'message';
    const who = document.createElement('span');
    who.className = 'role';
    const text = document.createElement('p');
    text.className = 'text';
    const node = document.createTextNode('');
    text.append(node);
    box.append(who, text);
    $('agent-messages').append(box);
    message = { id, role: role || 'assistant', box, who, node };
    agent.messages.set(id, message);
  }
  if (role) message.role = role;
  message.who.textContent = message.role;
  return message;
}

function renderAgent(status) {
  const aggregate = status.aggregate || {};
  $('agent-name').textContent = status.model || '—';
  setStatus($('agent-status'), status.status);
  $('agent-joined').textContent = status.last_event_id || '(start)';
  agent.eventsBeforeTail = status.event_count || 0;
  agent.steps = [];
  $('agent-steps').replaceChildren();
  for (const step of aggregate.steps || []) {
    const copy = { name: step.name, status: step.status };
    agent.steps.push(copy);
    $('agent-steps').append(stepItem(copy));
  }
  agent.tools = new Map();
  $('agent-tools').replaceChildren();
  for (const call of aggregate.tool_calls || []) {
    agentTool(call.id, (c) => Object.assign(c, call));
  }
  agent.messages = new Map();
  $('agent-messages').replaceChildren();
  for (const message of aggregate.messages || []) {
    agentMessage(message.id, message.role).node.data = message.content || '';
  }
  for (const choice of aggregate.choices || []) {
    agentMessage(`choice-${choice.index}`, 'assistant').node.data = choice.text || '';
  }
  agent.reasoning = document.createTextNode(aggregate.reasoning || '');
  $('agent-reasoning').replaceChildren(agent.reasoning);
  $('agent-reasoning-box').hidden = !aggregate.reasoning;
  agent.state = aggregate.state === undefined ? {} : aggregate.state;
  renderTree($('agent-state'), agent.state, agent.collapsed);
  $('agent-messages').setAttribute('aria-busy', String(status.status === 'running'));
}

function agentEvent(event) {
  const { type, data } = event;
  switch (type) {
    case 'step.started':
    case 'step.finished':
      agentStep(data.name, type === 'step.started');
      break;
    case 'tool_call.started':
      agentTool(data.toolCallId, (c) => {
        c.name = data.toolCallName || c.name;
      });
      break;
    case 'tool_call.args':
      agentTool(data.toolCallId, (c) => {
        c.arguments += data.delta || '';
      });
      break;
    case 'tool_call.finished':
      agentTool(data.toolCallId, (c) => {
        c.finished = true;
      });
      break;
    case 'tool_call.result':
      agentTool(data.toolCallId, (c) => {
        c.result = data.content === undefined ? '' : String(data.content);
      });
      break;
    case 'tool_call.delta':
      agentTool(data.id || `call-${data.index}`, (c) => {
        if (data.name) c.name = data.name;
        c.arguments += data.arguments || '';
      });
      break;
    case 'message.started':
      agentMessage(data.messageId, data.role);
      break;
    case 'message.delta': {
      const id = data.messageId || `choice-${data.index || 0}`;
      agentMessage(id).node.appendData(data.text || '');
      break;
    }
    case 'reasoning.delta':
      $('agent-reasoning-box').hidden = false;
      agent.reasoning.appendData(data.text || '');
      break;
    case 'state.snapshot':
      agent.state = data.state;
      renderTree($('agent-state'), agent.state, agent.collapsed);
      break;
    case 'state.delta':
      try {
        agent.state = applyPatch(agent.state, data.patch || []);
      } catch (e) {
        rejoin(agent, `state patch did not apply: ${e.message}`, watchAgent);
        return;
      }
      renderTree($('agent-state'), agent.state, agent.collapsed);
      break;
    case 'reset':
      rejoin(agent, `reset (${data.reason})`, watchAgent);
      return;
    case 'stream.completed':
      setStatus($('agent-status'), 'completed');
      $('agent-messages').setAttribute('aria-busy', 'false');
      break;
    case 'stream.failed':
      setStatus($('agent-status'), 'failed');
      showError(new ApiError(0, data.error && data.error.code, `agent stream failed: ${data.error ? data.error.message : ''}`));
      $('agent-messages').setAttribute('aria-busy', 'false');
      break;
    case 'stream.cancelled':
      setStatus($('agent-status'), 'cancelled');
      $('agent-messages').setAttribute('aria-busy', 'false');
      break;
    default:
      break;
  }
}

function watchAgent(streamId, token) {
  return join(agent, streamId, token, renderAgent, agentEvent);
}

// ---------------------------------------------------------------------------------------
// Transcription view: a live feed's captions, one line per audio segment.

const feed = {
  tail: null,
  streamId: null,
  token: null,
  lines: new Map(),
  segments: 0,
  eventsBeforeTail: 0,
  facts() {
    $('feed-events').textContent = String(feed.eventsBeforeTail + (feed.tail ? feed.tail.events : 0));
    $('feed-resumes').textContent = feed.tail ? String(feed.tail.resumes) : '0';
    $('feed-segments').textContent = String(feed.segments);
  },
  connection(state) {
    $('feed-connection').textContent = state;
  },
  resumed() {},
};

function captionLine(segment) {
  let line = feed.lines.get(segment);
  if (!line) {
    const p = document.createElement('p');
    p.className = 'caption';
    p.dataset.segment = String(segment);
    const node = document.createTextNode('');
    p.append(node);
    $('feed-captions').append(p);
    line = { p, node };
    feed.lines.set(segment, line);
  }
  return line;
}

function renderFeed(status) {
  const aggregate = status.aggregate || {};
  $('feed-model').textContent = status.model || '—';
  setStatus($('feed-status'), status.status);
  feed.segments = aggregate.segments || 0;
  feed.eventsBeforeTail = status.event_count || 0;
  feed.lines = new Map();
  $('feed-captions').replaceChildren();
  const earlier = (aggregate.transcript || '').trim();
  $('feed-earlier').textContent = earlier;
  $('feed-earlier-box').hidden = !earlier;
}

function feedEvent(event) {
  const { type, data } = event;
  switch (type) {
    case 'transcript.delta': {
      const line = captionLine(data.segment === undefined ? 'live' : data.segment);
      line.node.appendData(data.text || '');
      line.p.classList.add('speaking');
      break;
    }
    case 'custom':
      if (data.name === 'transcription.segment' && data.value) {
        feed.segments += 1;
        const line = captionLine(data.value.segment);
        line.p.classList.remove('speaking');
      }
      break;
    case 'transcript.done':
      for (const line of feed.lines.values()) line.p.classList.remove('speaking');
      break;
    case 'reset':
      rejoin(feed, `reset (${data.reason})`, followFeed);
      return;
    case 'stream.completed':
      setStatus($('feed-status'), 'completed');
      break;
    case 'stream.failed':
      setStatus($('feed-status'), 'failed');
      showError(new ApiError(0, data.error && data.error.code, `feed failed: ${data.error ? data.error.message : ''}`));
      break;
    case 'stream.cancelled':
      setStatus($('feed-status'), 'cancelled');
      break;
    default:
      break;
  }
}

function followFeed(streamId, token) {
  return join(feed, streamId, token, renderFeed, feedEvent);
}

// ---------------------------------------------------------------------------------------
// Tabs (WAI-ARIA tabs pattern: arrow keys move between tabs, Tab moves into the panel).

const TABS = ['chat', 'agent', 'feed'];

function selectTab(name, focus) {
  for (const tab of TABS) {
    const button = $(`tab-${tab}`);
    const selected = tab === name;
    button.setAttribute('aria-selected', String(selected));
    button.tabIndex = selected ? 0 : -1;
    $(`view-${tab}`).hidden = !selected;
    if (selected && focus) button.focus();
  }
}

function setUpTabs() {
  for (const [i, tab] of TABS.entries()) {
    const button = $(`tab-${tab}`);
    button.addEventListener('click', () => selectTab(tab, false));
    button.addEventListener('keydown', (e) => {
      const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -i, End: TABS.length - 1 - i };
      if (!(e.key in moves)) return;
      e.preventDefault();
      selectTab(TABS[(i + moves[e.key] + TABS.length) % TABS.length], true);
    });
  }
}

// ---------------------------------------------------------------------------------------
// Start-up.

function joinForm(formId, streamInput, tokenInput, start) {
  $(formId).addEventListener('submit', (e) => {
    e.preventDefault();
    showError(null);
    const id = $(streamInput).value.trim();
    const token = $(tokenInput).value.trim();
    start(id, token).catch(showError);
  });
}

function main() {
  const keyInput = $('api-key');
  keyInput.value = storedKey();
  const saveKey = () => {
    storeKey(keyInput.value.trim());
    showError(null);
    loadModels();
  };
  keyInput.addEventListener('change', saveKey);
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    saveKey();
  });
  $('api-key-forget').addEventListener('click', () => {
    keyInput.value = '';
    storeKey('');
    loadModels();
  });
  setUpTabs();
  $('chat-form').addEventListener('submit', sendChat);
  $('chat-message').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      $('chat-form').requestSubmit();
    }
  });
  $('chat-model').addEventListener('change', () => {
    $('chat-custom-field').hidden = $('chat-model').value !== '';
    if ($('chat-model').value === '') $('chat-custom-model').focus();
  });
  $('chat-drop').addEventListener('click', dropChat);
  $('chat-cancel').addEventListener('click', cancelChat);
  joinForm('agent-form', 'agent-stream', 'agent-token', watchAgent);
  joinForm('feed-form', 'feed-stream', 'feed-token', followFeed);

  // Links such as /?view=agent&stream=st_…&token=rt_… (the examples print them) open a view
  // on a stream; the token then leaves the address bar.
  const params = new URLSearchParams(window.location.search);
  const view = params.get('view');
  const stream = params.get('stream');
  if (view === 'agent' || view === 'feed') {
    selectTab(view, false);
    if (stream) {
      $(`${view}-stream`).value = stream;
      $(`${view}-token`).value = params.get('token') || '';
      (view === 'agent' ? watchAgent : followFeed)(stream, params.get('token') || '').catch(showError);
    }
    window.history.replaceState(null, '', `/?view=${view}`);
  }
  loadModels();
  document.body.dataset.ready = 'true';
}

main();
