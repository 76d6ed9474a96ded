// The view tabs, after the WAI-ARIA tabs pattern: arrow keys, Home and End move between tabs,
// Tab moves into the panel. Only the selected tab is in the tab order.

import { $ } from './dom.js';

const TABS = ['chat', 'agent', 'feed'];

export function selectTab(name, focus) {
  for (const tab of TABS) {
    const button = $(`tab-${tab}`);
    const selected = tab === name;
    button.setAttribute('aria-selected', String(selected));
    button.tabIndex = selected ? 0 : -1;
    $(`view-${tab}`).hidden = !selected;
    if (selected && focus) button.focus();
  }
}

export function setUpTabs() {
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
