// What every view shares about the page's elements: lookup by id, and the status fields whose
// `data-status` the stylesheet colours. The ids are the page's contract with its browser tests
// (tests/e2e), so they are looked up by name rather than held in variables at load time.

export const $ = (id) => document.getElementById(id);

/** A new element with its class, the way every view builds its lists. */
export function el(tag, className) {
  const element = document.createElement(tag);
  element.className = className;
  return element;
}

/** Shows `status` as text and as `data-status`, which picks its colour. */
export function setStatus(element, status) {
  element.textContent = status;
  element.dataset.status = status;
}
