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

/** JSON equality: objects compare by their members, whatever their order (RFC 6902 §4.6). */
function equal(a, b) {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length
    && keys.every((k) => Object.hasOwn(b, k) && equal(a[k], b[k]));
}

export function applyPatch(doc, patch) {
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
        if (!equal(getAt(root, tokens), op.value)) {
          throw new Error(`test failed at ${op.path}`);
        }
        break;
      default:
        throw new Error(`unknown op ${op.op}`);
    }
  }
  return root;
}
