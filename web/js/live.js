// Live updates from the node (docs/protocol.md §7): one websocket for the page, any number of
// subscriptions on it. Each subscription remembers the last feed position it saw; after a
// dropped connection the page reconnects (backing off up to 30 s) and subscribes again with
// `since`, so the node replays exactly what was missed: nothing lost, nothing doubled.

const PROTOCOL = "olievlek.v1";
const MAX_BACKOFF_MS = 30000;

export class LiveFeed {
  constructor() {
    this.state = "offline";
    this.statusListeners = new Set();
    this.subscriptions = new Map(); // id → {filter, since, onChange, onReset}
    this.socket = null;
    this.backoff = 500;
    this.closed = false;
    this.timer = null;
    this.counter = 0;
  }

  onStatus(state) {
    this.state = state;
    for (const listener of this.statusListeners) listener(state);
  }

  // watchStatus((state) => …) with "connecting" | "live" | "offline" → stop function.
  watchStatus(listener) {
    this.statusListeners.add(listener);
    listener(this.state);
    return () => this.statusListeners.delete(listener);
  }

  // subscribe({kind: ["case"]}, (record, seq) => …, () => reload) → unsubscribe function.
  subscribe(filter, onChange, onReset) {
    this.counter += 1;
    const id = `s${this.counter}`;
    this.subscriptions.set(id, { filter, since: null, onChange, onReset });
    if (this.isOpen()) this.sendSubscribe(id);
    else this.connect();
    return () => {
      this.subscriptions.delete(id);
      if (this.isOpen()) this.send({ type: "unsubscribe", id });
    };
  }

  isOpen() {
    return this.socket && this.socket.readyState === WebSocket.OPEN;
  }

  connect() {
    if (this.closed || this.socket) return;
    this.onStatus("connecting");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/api/v1/live`, PROTOCOL);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.backoff = 500;
      this.onStatus("live");
      for (const id of this.subscriptions.keys()) this.sendSubscribe(id);
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", () => {
      if (this.socket === socket) this.socket = null;
      if (this.closed) return;
      this.onStatus("offline");
      const wait = this.backoff * (0.75 + Math.random() * 0.5);
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.connect(), wait);
    });
  }

  sendSubscribe(id) {
    const sub = this.subscriptions.get(id);
    const message = { type: "subscribe", id, filter: sub.filter };
    if (sub.since !== null) message.since = sub.since;
    this.send(message);
  }

  send(message) {
    try { this.socket.send(JSON.stringify(message)); } catch (_) { /* reconnect resends */ }
  }

  receive(text) {
    let message;
    try { message = JSON.parse(text); } catch (_) { return; }
    const sub = this.subscriptions.get(message.sub || message.id);
    switch (message.type) {
    case "subscribed":
      if (sub && sub.since === null) sub.since = message.seq;
      break;
    case "change":
      if (!sub) return;
      if (sub.since !== null && message.seq <= sub.since) return;
      sub.since = message.seq;
      sub.onChange(message.record, message.seq);
      break;
    case "reset":
      if (!sub) return;
      // The node could not replay from our position (it was restarted on other data, or we
      // were away too long): reload what the subscription stands for, then follow from here.
      sub.since = message.seq;
      if (sub.onReset) sub.onReset();
      this.sendSubscribe(message.sub);
      break;
    default:
      break;
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000);
    this.socket = null;
  }
}
