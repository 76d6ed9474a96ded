// A JSON value (the agent's state) as a tree of native disclosure widgets, which bring their
// keyboard use with them. The branches a user closed stay closed across re-renders.

/** Shows `value` in `container`; `collapsed` holds the paths of the branches shut. */
export function renderTree(container, value, collapsed) {
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
