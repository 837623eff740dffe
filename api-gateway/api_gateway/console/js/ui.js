// The console's few widgets: tables, forms, action buttons, status badges, usage bars.
// Errors are shown where they happened: under the form that failed, beside the button.

import { h, fill } from "./dom.js";

const PROGRESS = /^(BUILD|REBOOT|HARD_REBOOT|creating|deleting|attaching|detaching|extending|saving|queued|uploading|importing|reserved)$/;
const GOOD = /^(ACTIVE|active|available|in-use|up|enabled|alive)$/;
const BAD = /^(ERROR|error|error_deleting|error_extending|killed|down|disabled|dead)$/;

/** A status as a coloured badge; a working state shows a spinner. */
export function statusBadge(status) {
  const text = status === null || status === undefined || status === "" ? "—" : String(status);
  let kind = "neutral";
  if (PROGRESS.test(text)) kind = "progress";
  else if (GOOD.test(text)) kind = "good";
  else if (BAD.test(text)) kind = "bad";
  return h("span", { class: `badge ${kind}`, "data-status": text }, kind === "progress" ? h("span", { class: "spinner", "aria-hidden": "true" }) : null, text);
}

/** A line for an error message (the API's, as it gave it); empty until ``show``. */
export function errorLine() {
  const el = h("p", { class: "error", role: "alert", hidden: true });
  return {
    el,
    show(message) {
      el.hidden = false;
      fill(el, String(message));
    },
    clear() {
      el.hidden = true;
      fill(el);
    },
  };
}

/**
 * A button that runs ``fn``; its error appears right beside it. With ``confirm`` the
 * first click only arms it ("Confirm delete?") for a few seconds: no browser dialog.
 */
export function action(label, fn, { confirm = null, danger = false, name = null } = {}) {
  const err = h("span", { class: "error inline", role: "alert", hidden: true });
  const button = h("button", { type: "button", class: danger ? "danger" : "", "data-action": name || label });
  button.textContent = label;
  let armed = null;
  button.addEventListener("click", async () => {
    if (confirm && !armed) {
      button.textContent = confirm;
      button.classList.add("armed");
      armed = setTimeout(() => {
        armed = null;
        button.textContent = label;
        button.classList.remove("armed");
      }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    button.textContent = label;
    button.classList.remove("armed");
    err.hidden = true;
    button.disabled = true;
    try {
      await fn();
    } catch (e) {
      err.hidden = false;
      fill(err, e.message || String(e));
    } finally {
      button.disabled = false;
    }
  });
  return h("span", { class: "action" }, button, err);
}

/**
 * A table of ``rows``: columns are {title, value(row) -> text|Node, class}.
 * Each row carries data-id (``key(row)``) so it can be found and updated in place.
 */
export function table(columns, rows, { key = (r) => r.id, empty = "Nothing here yet.", name = null } = {}) {
  const head = h("thead", null, h("tr", null, columns.map((c) => h("th", { class: c.class }, c.title))));
  const body = h("tbody");
  for (const row of rows) body.appendChild(tableRow(columns, row, key));
  const t = h("table", { class: "list", "data-table": name }, head, body);
  if (!rows.length) return h("div", null, t, h("p", { class: "empty" }, empty));
  return t;
}

export function tableRow(columns, row, key = (r) => r.id) {
  return h("tr", { "data-id": key(row) }, columns.map((c) => h("td", { class: c.class }, c.value(row))));
}

/** A form; ``onSubmit(values)`` may throw, and its message shows under the form. */
export function form({ fields, submit = "Create", onSubmit, name = null, reset = true }) {
  const err = errorLine();
  const inputs = {};
  const rows = fields.map((f) => {
    const id = `f-${name || "form"}-${f.name}`;
    let input;
    if (f.type === "select" || f.type === "multiselect") {
      input = h(
        "select",
        { id, name: f.name, required: f.required, multiple: f.type === "multiselect" },
        f.type === "select" && !f.required ? h("option", { value: "" }, f.none || "—") : null,
        (f.options || []).map((o) => h("option", { value: o.value, selected: o.selected }, o.label)),
      );
    } else if (f.type === "textarea") {
      input = h("textarea", { id, name: f.name, rows: 4, placeholder: f.placeholder });
    } else if (f.type === "checkbox") {
      input = h("input", { id, name: f.name, type: "checkbox", checked: f.value });
    } else {
      input = h("input", {
        id,
        name: f.name,
        type: f.type || "text",
        required: f.required,
        value: f.value,
        placeholder: f.placeholder,
        min: f.min,
        autocomplete: f.autocomplete || "off",
      });
    }
    inputs[f.name] = { input, field: f };
    return h("div", { class: "field" }, h("label", { for: id }, f.label), input);
  });
  const button = h("button", { type: "submit", class: "primary" }, submit);
  const el = h("form", { class: "form", "data-form": name }, rows, h("div", { class: "field submit" }, button), err.el);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    err.clear();
    const values = {};
    for (const [key, { input, field }] of Object.entries(inputs)) {
      if (field.type === "multiselect") values[key] = [...input.selectedOptions].map((o) => o.value);
      else if (field.type === "checkbox") values[key] = input.checked;
      else if (field.type === "file") values[key] = input.files[0] || null;
      else if (field.type === "number") values[key] = input.value === "" ? null : Number(input.value);
      else values[key] = input.value;
    }
    button.disabled = true;
    try {
      await onSubmit(values);
      if (reset) el.reset();
    } catch (e) {
      err.show(e.message || String(e));
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

/** A usage bar: ``used`` of ``limit`` (a limit of -1 is unlimited). */
export function usageBar(label, used, limit, unit = "") {
  const unlimited = limit === -1 || limit === null || limit === undefined;
  const max = unlimited ? Math.max(used, 1) : Math.max(limit, 1);
  const ratio = unlimited ? 0 : used / max;
  const text = `${used}${unit} of ${unlimited ? "unlimited" : `${limit}${unit}`}`;
  return h(
    "div",
    { class: "usage", "data-usage": label },
    h("div", { class: "usage-head" }, h("span", { class: "usage-label" }, label), h("span", { class: "usage-text" }, text)),
    h("meter", { min: 0, max, value: Math.min(used, max), low: max * 0.7, high: max * 0.9, optimum: 0, title: text, class: ratio >= 1 ? "full" : "" }),
  );
}

/** A titled part of a page. */
export function section(title, ...children) {
  return h("section", { class: "panel" }, h("h2", null, title), children);
}

/** An ISO time as the browser's local time (or the text as it came). */
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** Calls ``fn`` once, ``ms`` after the last of a burst of calls. */
export function debounce(fn, ms = 120) {
  let timer = null;
  const wrapped = () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}
