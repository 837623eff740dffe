// Building the page: elements from data, with every value set as text or an attribute.
//
//   h("td", {class: "name"}, server.name)          // <td class="name">…text…</td>
//   h("button", {onclick: () => stop(id)}, "Stop")
//   svg("circle", {cx: 5, cy: 5, r: 3})
//
// There is no way to pass HTML here: strings become text nodes (a server named
// "<img src=x onerror=alert(1)>" is shown as those characters), and the page's
// Content-Security-Policy (Trusted Types) makes the browser refuse any HTML string
// given to an HTML sink (an element's markup and the like), so none can creep in later.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(parent, c);
  } else if (child instanceof Node) {
    parent.appendChild(child);
  } else {
    parent.appendChild(document.createTextNode(String(child)));
  }
}

function setProps(el, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "value" && "value" in el) {
      el.value = value;
    } else if (key === "checked" || key === "selected") {
      el[key] = Boolean(value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

/** An HTML element with properties and children (strings become text). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

/** An SVG element, the same way. */
export function svg(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  append(el, children);
  return el;
}

/** Replace everything inside ``el``. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}
