// The tokenrelay playground's start-up, the module index.html loads. Plain browser JavaScript
// modules, no build step, no dependencies. The page is a client of the public API like any
// other: fetch to create and inspect streams, EventSource to read them (with `?token=` read
// tokens, since EventSource sends no headers).
//
// The modules:
//   chat.js   the chat view
//   agent.js  the agent view; patch.js applies its state deltas, tree.js shows its state
//   feed.js   the transcription view
//   join.js   joining a running stream late (the agent and transcription views)
//   tail.js   one stream read over EventSource, resumed by id
//   api.js    the API key, the fetch helper, the error box
//   tabs.js   the view tabs
//   dom.js    element lookup, status fields

import { $ } from './dom.js';
import { showError, storedKey, storeKey } from './api.js';
import { loadModels, setUpChat } from './chat.js';
import { watchAgent } from './agent.js';
import { followFeed } from './feed.js';
import { selectTab, setUpTabs } from './tabs.js';

/** Starts a view on the stream its form names when the form is sent. */
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
  let saved = keyInput.value.trim();
  // Enter fires both `change` and `submit`: the models are fetched once per new key.
  const saveKey = () => {
    const key = keyInput.value.trim();
    if (key === saved) return;
    saved = key;
    storeKey(key);
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
    saved = '';
    storeKey('');
    loadModels();
  });
  setUpTabs();
  setUpChat();
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
