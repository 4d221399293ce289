// One websocket to /ws/events/ that reconnects by itself, with a visible banner while live updates are interrupted.
// handlers: {event(name, data), state(text)}. Pages catch up from the database on "hello" (sent after the server has
// attached us to the groups) and on "resync" (the server's event bus was down and is back: events were lost).
// Reconnects back off exponentially (0.5 s doubling to 15 s) with jitter, so a restarted server is not stampeded.
// Close codes: 4401 signed out or credential revoked (retry slowly: signing in again elsewhere reconnects),
// 4408 this page fell too far behind (reconnect and catch up).
window.coeBanner = (function () {
  const messages = new Map();
  let node = null;
  return function (key, text) { // show text (as text, never HTML) under key; text null: that message is over
    if (text == null) messages.delete(key); else messages.set(key, text);
    if (!node) {
      if (!messages.size) return;
      node = document.createElement("div");
      node.className = "banner live-banner";
      node.setAttribute("role", "status");
      (document.querySelector("main") || document.body).prepend(node);
    }
    node.textContent = [...messages.values()].join(" · ");
    node.hidden = !messages.size;
  };
})();

window.coeSocket = function (groups, handlers) {
  const MIN = 500, MAX = 15000;
  const state = handlers.state || function () {};
  let delay = MIN;
  function retry(text, wait) {
    const ms = wait / 2 + Math.random() * (wait / 2);
    window.coeBanner("socket", `${text} — reconnecting in ${Math.ceil(ms / 1000)} s…`);
    state("reconnecting…");
    setTimeout(connect, ms);
  }
  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws/events/?groups=${groups}`);
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.event === "hello" || m.event === "resync") {
        delay = MIN;
        const live = m.event === "resync" || m.data.live !== false;
        window.coeBanner("socket", live ? null : "Live updates interrupted (event bus unreachable) — waiting for it…");
        state(live ? "live" : "reconnecting…");
      } else if (m.event === "stream") {
        window.coeBanner("socket", "Live updates interrupted (event bus unreachable) — waiting for it…");
        state("reconnecting…");
        return;
      }
      handlers.event(m.event, m.data);
    };
    ws.onclose = (e) => {
      if (e.code === 4401) {
        delay = MAX * 2;
        retry("Signed out or access revoked: sign in again to see live updates", delay);
        return;
      }
      retry(e.code === 4408 ? "Live updates fell behind" : "Live updates interrupted", delay);
      delay = Math.min(delay * 2, MAX);
    };
  }
  connect();
};
