// The agent view: an agent stream's steps, tool calls, state and messages, joined late
// (join.js) and kept up to date from its events: AG-UI lifecycle events from a publisher, or
// a chat's own deltas when the stream is a chat.

import { $, setStatus, el } from './dom.js';
import { ApiError, showError } from './api.js';
import { join, rejoin } from './join.js';
import { applyPatch } from './patch.js';
import { renderTree } from './tree.js';

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
  const name = el('span', 'name');
  name.textContent = step.name;
  const badge = el('span', 'badge');
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
  const item = el('li', 'tool');
  const head = el('div', 'tool-head');
  const name = el('span', 'name');
  const badge = el('span', 'badge');
  head.append(name, ' ', badge);
  const args = el('pre', 'args');
  const result = el('pre', 'result');
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
    const box = el('div', 'message');
    const who = el('span', 'role');
    const text = el('p', 'text');
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
    case 'tool_call.delta': {
      // A chat's tool call is named by its index: providers send its id with the first
      // fragment only. The server's aggregate keys them the same way.
      const index = data.index || 0;
      const known = [...agent.tools.values()].find((c) => c.index === index);
      agentTool(known ? known.id : (data.id || `call-${index}`), (c) => {
        c.index = index;
        if (data.name) c.name = data.name;
        c.arguments += data.arguments || '';
      });
      break;
    }
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

export function watchAgent(streamId, token) {
  return join(agent, streamId, token, renderAgent, agentEvent);
}
