/* Live updates for the simulator pages: the "hwsim" websocket group, with polling of a JSON endpoint as the
   fallback (no websocket server, e.g. a plain WSGI server) and as a slow safety net while the socket is up. */
window.hwsimLive = function (opts) {
  const fast = opts.interval || 1000, slow = 5000;
  let timer = null, wsUp = false;
  function tick() {
    if (opts.finished && opts.finished()) return;
    Promise.resolve(opts.poll()).catch(() => {}).finally(() => { timer = setTimeout(tick, wsUp ? slow : fast); });
  }
  try {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws/events/?groups=hwsim`);
    ws.onopen = () => { wsUp = true; };
    ws.onmessage = (m) => { try { opts.onEvent(JSON.parse(m.data)); } catch (e) { /* ignore malformed */ } };
    ws.onclose = ws.onerror = () => { wsUp = false; };
  } catch (e) { wsUp = false; }
  tick();
  return { stop() { clearTimeout(timer); } };
};
window.hwsimColor = function (i, n, alpha) {
  return `hsla(${Math.round((i * 360) / Math.max(n, 1) + 200) % 360}, 65%, 52%, ${alpha === undefined ? 0.75 : alpha})`;
};
