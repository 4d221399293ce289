/* Live updates for the simulator pages: the "hwsim" websocket group, with polling of a JSON endpoint as the
   fallback (no websocket server, e.g. a plain WSGI server) and as a slow safety net while the socket is up. */
window.hwsimLive = function (opts) {
  const fast = opts.interval || 1000, slow = 5000;
  let timer = null, wsUp = false;
  function tick() {
    if (opts.finished && opts.finished()) return;
    Promise.resolve(opts.poll()).catch(() => {}).finally(() => { timer = setTimeout(tick, wsUp ? slow : fast); });
  }
  window.coeSocket("hwsim", {  // the shared reconnecting socket (dashboard_socket.js)
    event: (name, data) => opts.onEvent({event: name, data: data}),
    state: (s) => { wsUp = s === "live"; },
  });
  tick();
  return { stop() { clearTimeout(timer); } };
};
window.hwsimColor = function (i, n, alpha) {
  return `hsla(${Math.round((i * 360) / Math.max(n, 1) + 200) % 360}, 65%, 52%, ${alpha === undefined ? 0.75 : alpha})`;
};
