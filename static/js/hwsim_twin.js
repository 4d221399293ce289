/* Live twin: current HBM occupancy (by owner) and its recent history, pushed over the websocket or polled. */
(function () {
  const el = document.getElementById("twin");
  const $ = (id) => document.getElementById(id);
  const GB = 1e9;
  const now = new Chart($("twin-now"), { type: "bar", data: { labels: ["HBM"], datasets: [] }, options: {
    indexAxis: "y", animation: false, scales: { x: { stacked: true, title: { display: true, text: "GB" } }, y: { stacked: true } } } });
  const hist = new Chart($("twin-history"), { type: "line", data: { labels: [], datasets: [] }, options: {
    animation: false, scales: { y: { stacked: true, title: { display: true, text: "GB" } } } } });

  function showSnapshot(s) {
    if (!s || !s.hbm) return;
    const owners = [["router", s.hbm.router, "rgba(30,35,48,.7)"], ["kv", s.hbm.kv, "rgba(245,158,11,.7)"]];
    const names = Object.keys(s.hbm.experts).sort();
    names.forEach((n, i) => owners.push([n, s.hbm.experts[n], hwsimColor(i, names.length)]));
    owners.push(["free", s.hbm.free, "rgba(200,205,215,.4)"]);
    now.data.datasets = owners.map(([label, b, color]) => ({ label, data: [b / GB], backgroundColor: color }));
    now.update();
    dom.rows($("twin-resident").querySelector("tbody"), names.map((n) => [n, (s.hbm.experts[n] / GB).toFixed(1)]));
    const facts = [["Machine / policy", `${s.machine} / ${s.policy}`], ["Decisions consumed", s.fed],
      ["Completed / queued", `${s.done} / ${s.queued}`], ["Running expert", s.running || "idle"],
      ["Switches", s.switches], ["HBM hit rate", s.hbm_hit_rate.toFixed(3)], ["Last decision id", s.position],
      ["Updated", s.at]];
    dom.facts($("twin-facts"), facts, (k) => `twin-${k.split(" ")[0].toLowerCase()}`);
  }

  function showHistory(h) {
    hist.data.labels = h.map((p) => p.at.slice(11, 19));
    hist.data.datasets = [["router", "rgba(30,35,48,.7)"], ["kv", "rgba(245,158,11,.7)"], ["experts", "rgba(48,86,211,.7)"],
      ["free", "rgba(200,205,215,.4)"]].map(([k, color]) => ({ label: k, data: h.map((p) => p[k] / GB), fill: true,
      backgroundColor: color, pointRadius: 0 }));
    hist.update();
  }

  function poll() {
    return fetch(el.dataset.stateUrl).then((r) => r.json()).then((st) => {
      $("twin-enabled").textContent = st.enabled ? "running" : "stopped";
      showSnapshot(st.snapshot);
      showHistory(st.history || []);
    });
  }
  hwsimLive({ onEvent: (ev) => { if (ev.event === "hwsim.twin") showSnapshot(ev.data); }, poll, interval: 2000 });
})();
