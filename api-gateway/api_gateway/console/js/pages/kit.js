// What the list pages share: a title, an optional create form, a table that reloads
// when an event says its resources changed (never on a timer).
//
//   listPage(ctx, el, {
//     title: "Key pairs", name: "keypairs",
//     load: async () => rows, columns: [...],
//     create: {fields, submit, onSubmit},     // optional; fields may be an async function
//     events: ["compute.server.#"],           // reload on these (this project's)
//   });

import { h, fill } from "../dom.js";
import { errorLine, form, table, debounce } from "../ui.js";

export function listPage(ctx, el, spec) {
  const err = errorLine();
  const body = h("div", { class: "list-body", "data-list": spec.name });
  const createSlot = h("div", { class: "create-slot" });
  const parts = [h("h1", null, spec.title)];
  if (spec.intro) parts.push(h("p", { class: "intro" }, spec.intro));
  if (spec.create && ctx.session.canWrite) parts.push(createSlot);
  parts.push(err.el, body);
  if (spec.after) parts.push(spec.after);
  fill(el, ...parts);
  let generation = 0;
  let shown = null;

  async function reload() {
    const mine = ++generation;
    try {
      const rows = await spec.load();
      if (mine !== generation) return; // a later reload answered first
      err.clear();
      if (spec.loaded) spec.loaded(rows);
      // An event about a change this page already shows redraws nothing: a form the
      // user is filling in a row stays as it is.
      const signature = JSON.stringify([rows, spec.signature ? spec.signature() : null]);
      if (signature === shown) return;
      shown = signature;
      fill(body, table(spec.columns, rows, { name: spec.name, empty: spec.empty, key: spec.key }));
    } catch (e) {
      err.show(e.message);
    }
  }

  async function buildForm() {
    const fields = typeof spec.create.fields === "function" ? await spec.create.fields() : spec.create.fields;
    const f = form({
      fields,
      name: spec.create.name || spec.name,
      submit: spec.create.submit || "Create",
      onSubmit: async (values) => {
        await spec.create.onSubmit(values);
        await reload();
      },
    });
    fill(createSlot, h("details", { class: "create", open: spec.create.open }, h("summary", null, spec.create.title || `New ${spec.title.toLowerCase()}`), f));
  }

  const later = debounce(reload, 150);
  for (const pattern of spec.events || []) ctx.on(pattern, later);
  ctx.onResync(reload);
  if (spec.create && ctx.session.canWrite) buildForm().catch((e) => err.show(e.message));
  reload();
  return { reload, rebuildForm: buildForm, dispose: later.cancel };
}

/** Set a <select>'s options in place, keeping the chosen value when it is still there. */
export function setOptions(select, opts, none = null) {
  const chosen = select.value;
  select.replaceChildren();
  if (none !== null) select.appendChild(h("option", { value: "" }, none));
  for (const o of opts) select.appendChild(h("option", { value: o.value }, o.label));
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

/** ``{value, label}`` options from a list, labelled by name (or id). */
export function options(rows, label = (r) => r.name || r.id, value = (r) => r.id) {
  return rows.map((r) => ({ value: value(r), label: label(r) }));
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : "—";
}
