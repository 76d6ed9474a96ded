// One stream read over EventSource, in the native format (SPEC §4), resumed by id. Resume ids
// are opaque: the page only hands back the last one it saw. It owns the connection and its
// counts; what an event means is up to the view that opened it.

// Every native type (src/event/model.rs, TYPE_NAMES) and `reset`: an EventSource delivers
// only the types it listens for.
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
export class Tail {
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
