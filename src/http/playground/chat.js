// The chat view: creates a chat stream (POST /v1/streams) from a model and a message, streams
// the answer in (with the model's reasoning, a refusal and its tool calls, each apart from the
// text), and lets its user drop the connection (to watch it resume) or cancel. The model list
// is GET /v1/models.

import { $, el, setStatus } from './dom.js';
import { api, showError, streamPath } from './api.js';
import { Tail } from './tail.js';

/** A timestamped line in a connection log, which keeps its last 50. */
function logLine(list, text) {
  const item = document.createElement('li');
  const time = new Date().toLocaleTimeString();
  item.textContent = `${time} ${text}`;
  list.append(item);
  while (list.children.length > 50) list.firstElementChild.remove();
}

function formatUsage(usage) {
  if (!usage) return '—';
  return `${usage.input_tokens} in, ${usage.output_tokens} out`;
}

/** The chat on show: its stream, its tokens, and the text nodes its answer streams into. */
const chat = {
  tail: null,
  streamId: null,
  readToken: null,
  writeToken: null,
  text: null,
  reasoning: null,
  refusal: null,
  /** Tool calls by their index, as `tool_call.delta` names them: {index, id, name, arguments, item}. */
  tools: new Map(),
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

/** Empties the reasoning, refusal and tool calls, for a new chat or a replay from the start. */
function clearExtras() {
  chat.reasoning = document.createTextNode('');
  $('chat-reasoning').replaceChildren(chat.reasoning);
  $('chat-reasoning-box').hidden = true;
  chat.refusal = document.createTextNode('');
  $('chat-refusal').replaceChildren(chat.refusal);
  $('chat-refusal-box').hidden = true;
  chat.tools = new Map();
  $('chat-tools').replaceChildren();
  $('chat-tools-box').hidden = true;
}

function toolItem(call) {
  const item = el('li', 'tool');
  const head = el('div', 'tool-head');
  head.append(el('span', 'name'), ' ', el('span', 'call-id'));
  item.append(head, el('pre', 'args'));
  item.dataset.index = String(call.index);
  return item;
}

/**
 * Folds one `tool_call.delta` in: its fragments are matched by index (providers send the id and
 * name with the first fragment only), and the list is ordered by index, as the server's
 * aggregate is.
 */
function chatTool(data) {
  const index = data.index || 0;
  let call = chat.tools.get(index);
  if (!call) {
    call = { index, id: '', name: '', arguments: '', item: null };
    call.item = toolItem(call);
    chat.tools.set(index, call);
    const list = $('chat-tools');
    const after = [...list.children].find((li) => Number(li.dataset.index) > index);
    list.insertBefore(call.item, after || null);
    $('chat-tools-box').hidden = false;
  }
  if (data.id) call.id = data.id;
  if (data.name) call.name = data.name;
  call.arguments += data.arguments || '';
  call.item.querySelector('.name').textContent = call.name || `tool call ${index}`;
  call.item.querySelector('.call-id').textContent = call.id;
  call.item.querySelector('.args').textContent = call.arguments;
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
    case 'refusal.delta':
      // Like the answer, the refusal of choice 0 (the page asks for one choice).
      if ((data.index || 0) === 0) {
        $('chat-refusal-box').hidden = false;
        chat.refusal.appendData(data.text || '');
      }
      break;
    case 'tool_call.delta':
      chatTool(data);
      break;
    case 'usage':
      $('chat-usage').textContent = formatUsage(data);
      break;
    case 'reset':
      // The position could not be used; the server replays what it kept from the start.
      chat.text.data = '';
      clearExtras();
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
  // Cancel posts to chat.streamId: until the new stream exists, neither it nor the one before
  // is there to cancel.
  chat.streamId = null;
  chat.readToken = null;
  chat.writeToken = null;
  $('chat-stream-id').textContent = '—';
  $('chat-answer').replaceChildren();
  chat.text = document.createTextNode('');
  $('chat-answer').append(chat.text);
  clearExtras();
  $('chat-question').textContent = message;
  $('chat-question').hidden = false;
  $('chat-log').replaceChildren();
  $('chat-usage').textContent = '—';
  setStatus($('chat-status'), 'creating');
  chatRunning(true);
  $('chat-drop').disabled = true;
  $('chat-cancel').disabled = true;
  chatFacts();
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
  $('chat-cancel').disabled = false;
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

/** Fills the model list from GET /v1/models, keeping the choice when it is still listed. */
export async function loadModels() {
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

/** Wires the chat form: Send (or Ctrl+Enter), the model list's "other…", Drop and Cancel. */
export function setUpChat() {
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
}
