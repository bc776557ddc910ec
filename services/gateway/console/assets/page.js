// One page's lifetime: its polls and requests end when the person navigates away.

import { errorBox, fill } from "./dom.js";

export class Page {
  constructor(root, principal) {
    this.root = root;
    this.principal = principal;
    this.closed = false;
    this.aborter = new AbortController();
    this.timers = new Set();
    this.banner = null;
  }

  get signal() { return this.aborter.signal; }

  /** Run fn now and every ms after it finished; errors show in the page's banner. */
  every(ms, fn) {
    const tick = async () => {
      if (this.closed) return;
      try {
        await fn();
        this.clearError();
      } catch (err) {
        this.error(err);
      }
      if (!this.closed) {
        const t = setTimeout(() => { this.timers.delete(t); tick(); }, ms);
        this.timers.add(t);
      }
    };
    tick();
  }

  /** Run an action started by a click; its error shows in the banner. */
  async act(fn) {
    try {
      return await fn();
    } catch (err) {
      this.error(err);
      return undefined;
    }
  }

  error(err) {
    if (this.closed || (err && err.name === "AbortError")) return;
    if (!this.banner) {
      this.banner = document.createElement("div");
      this.root.prepend(this.banner);
    }
    fill(this.banner, errorBox(err, "page-error"));
  }

  clearError() {
    if (this.banner) {
      this.banner.remove();
      this.banner = null;
    }
  }

  close() {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.aborter.abort();
  }
}
