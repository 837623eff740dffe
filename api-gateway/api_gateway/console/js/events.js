// Live events from the gateway's /v1/events (Server-Sent Events): no polling anywhere.
//
//   const live = new LiveEvents({allProjects: false});
//   const off = live.on("compute.server.#", (event) => ...);   // AMQP topic patterns
//   live.onResync(() => reload());    // whenever the stream (re)opens: events are not replayed
//   live.start(types); ...; live.stop();       // types: from /v1/events/types
//
// The stream is opened by EventSource, which sends the session cookie (same origin) and
// reconnects by itself after a network error. An event may come twice (at-least-once
// publishing): its id drops the duplicate.

/** Does an AMQP topic pattern ("compute.server.*.end", "volume.#") match ``type``? */
export function matches(pattern, type) {
  const p = pattern.split(".");
  const t = type.split(".");
  const walk = (i, j) => {
    if (i === p.length) return j === t.length;
    if (p[i] === "#") {
      for (let k = j; k <= t.length; k++) if (walk(i + 1, k)) return true;
      return false;
    }
    if (j === t.length) return false;
    return (p[i] === "*" || p[i] === t[j]) && walk(i + 1, j + 1);
  };
  return walk(0, 0);
}

/** A bounded memory of ids already seen. */
export class Seen {
  constructor(size = 2000) {
    this.size = size;
    this.ids = new Set();
  }
  /** True the first time ``id`` is offered, false after. */
  first(id) {
    if (!id) return true;
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.size) this.ids.delete(this.ids.values().next().value);
    return true;
  }
}

export class LiveEvents {
  constructor({ allProjects = false, onClosed = () => {} } = {}) {
    this.types = [];
    this.url = allProjects ? "/v1/events?all_projects=true" : "/v1/events";
    this.handlers = new Set();
    this.resyncs = new Set();
    this.seen = new Seen();
    this.source = null;
    this.opened = 0;
    this.onClosed = onClosed;
    this.status = "connecting";
    this.statusListeners = new Set();
    this.retryTimer = null;
  }

  on(pattern, fn) {
    const entry = { pattern, fn };
    this.handlers.add(entry);
    return () => this.handlers.delete(entry);
  }

  onResync(fn) {
    this.resyncs.add(fn);
    return () => this.resyncs.delete(fn);
  }

  onStatus(fn) {
    this.statusListeners.add(fn);
    fn(this.status);
    return () => this.statusListeners.delete(fn);
  }

  setStatus(status) {
    this.status = status;
    for (const fn of this.statusListeners) fn(status);
  }

  start(types = this.types) {
    this.types = types;
    if (this.source) return;
    const source = new EventSource(this.url);
    this.source = source;
    const deliver = (message) => this.deliver(message);
    for (const type of this.types) source.addEventListener(type, deliver);
    source.addEventListener("open", () => {
      this.opened += 1;
      this.setStatus("live");
      for (const fn of this.resyncs) fn();
    });
    source.addEventListener("error", (e) => {
      if (e.data) return; // the gateway's "event: error" (stream closed): EventSource reconnects
      if (source.readyState === EventSource.CLOSED) {
        // An HTTP error (401: the session ended; 503: too many streams): decided outside.
        this.source = null;
        this.setStatus("closed");
        this.onClosed(this);
      } else {
        this.setStatus("reconnecting");
      }
    });
  }

  /** Open again after ``delayMs`` (once: a closed stream is retried, never polled). */
  restartLater(delayMs) {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.start(), delayMs);
  }

  stop() {
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    this.source = null;
    this.handlers.clear();
    this.resyncs.clear();
    this.statusListeners.clear();
  }

  deliver(message) {
    if (!this.seen.first(message.lastEventId)) return;
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    event.received_at = Date.now();
    for (const { pattern, fn } of [...this.handlers]) {
      if (matches(pattern, event.event_type)) {
        try {
          fn(event);
        } catch (err) {
          console.error("event handler failed", err);
        }
      }
    }
  }
}
