// One websocket to /ws/events/ that reconnects by itself (backoff up to 10 s). handlers: {event(name, data), state(text)}.
// Pages catch up from the database on every "hello" (sent after the server has joined us to the groups).
window.coeSocket = function (groups, handlers) {
  let delay = 500;
  const state = handlers.state || function () {};
  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws/events/?groups=${groups}`);
    ws.onopen = () => { delay = 500; state("live"); };
    ws.onmessage = (e) => { const m = JSON.parse(e.data); handlers.event(m.event, m.data); };
    ws.onclose = () => {
      state(`reconnecting in ${Math.round(delay / 100) / 10} s`);
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }
  connect();
};
