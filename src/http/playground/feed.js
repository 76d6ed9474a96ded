// The transcription view: a live feed's captions, one line per audio segment. The recent
// transcript comes from the status document (join.js), new words from the live events.

import { $, setStatus, el } from './dom.js';
import { ApiError, showError } from './api.js';
import { join, rejoin } from './join.js';

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
    const p = el('p', 'caption');
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

export function followFeed(streamId, token) {
  return join(feed, streamId, token, renderFeed, feedEvent);
}
