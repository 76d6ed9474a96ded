// Joining a running stream late: the status document's aggregate, then the events after its
// last_event_id (the aggregate is exactly the events up to that id). The agent and
// transcription views join this way, each with its own render and event handler.

import { api, showError, streamPath } from './api.js';
import { Tail } from './tail.js';

/**
 * Reads the status, hands it to `render`, then tails from its `last_event_id`. `view` is the
 * view's own record: `join` sets its `tail`, `streamId` and `token`, and calls its `facts()`,
 * `connection(state)` and `resumed(at, how)`.
 */
export async function join(view, streamId, token, render, onEvent) {
  if (view.tail) view.tail.stop();
  view.tail = null;
  view.streamId = streamId;
  view.token = token;
  // Another join may start while this one waits (Watch pressed twice, a rejoin): only the
  // newest goes on, or two tails would apply every event twice.
  view.joins = (view.joins || 0) + 1;
  const attempt = view.joins;
  let status;
  try {
    status = await api('GET', streamPath(streamId, token));
  } catch (e) {
    if (attempt === view.joins) throw e;
    return;
  }
  if (attempt !== view.joins) return;
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
export function rejoin(view, reason, start) {
  console.warn(`rejoining ${view.streamId}: ${reason}`);
  if (view.tail) view.tail.stop();
  start(view.streamId, view.token).catch(showError);
}
