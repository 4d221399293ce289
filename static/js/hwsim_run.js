/* Run detail: live progress, then occupancy (stacked areas + capacity), residency heatmap, switches, CDFs. */
(function () {
  const el = document.getElementById("run");
  const runId = Number(el.dataset.run);
  const $ = (id) => document.getElementById(id);
  const GB = 1e9;
  let finished = false;

  function show(s) {
    $("progress-pct").textContent = `${s.pct}%`;
    $("progress-bar").value = s.pct;
    $("progress-count").textContent = `${s.done} / ${s.total}`;
    $("run-status").textContent = s.status;
    if (s.error) $("run-error").textContent = s.error;
    if (s.status === "done") downloads(s.downloads);
    if (s.status === "done" || s.status === "failed") finish(s.status);
  }

  function downloads(state) {  // stored downloads: ready, pending (a worker writes them) or to be prepared
    if (state === undefined) return;
    $("downloads").hidden = state !== "ready";
    $("downloads-pending").hidden = state !== "pending";
    $("prepare-downloads").hidden = state === "ready" || state === "pending";
  }

  function finish(status) {
    if (finished) return;
    finished = true;
    if (status !== "done") return;
    fetch(el.dataset.dataUrl).then((r) => r.json()).then(render);
  }

  function render(data) {
    $("results").hidden = false;
    const o = data.outputs, s = data.summary;
    const facts = [["Machine", s.machine], ["Policy / batching", `${s.policy} / ${s.batching}`],
      ["Requests", s.requests], ["Switches", s.switches], ["HBM hit rate", s.hbm_hit_rate.toFixed(3)],
      ["Mean switch", `${s.switch_ms_mean.toFixed(2)} ms`], ["TTFT p50 / p99", `${s.ttft_p50_ms.toFixed(1)} / ${s.ttft_p99_ms.toFixed(1)} ms`],
      ["End-to-end p50 / p99", `${s.e2e_p50_ms.toFixed(1)} / ${s.e2e_p99_ms.toFixed(1)} ms`],
      ["Experts that fit HBM / spilled", `${s.experts_fit_hbm} / ${s.spilled_experts}`],
      ["Simulated time", `${s.sim_seconds.toFixed(1)} s`], ["Engine wall time", `${s.wall_seconds.toFixed(2)} s`]];
    dom.facts($("summary"), facts);
    o.occupancy.forEach(occupancyChart);
    residency(o.residency);
    switches(o.switches);
    cdf(o.cdf);
  }

  function occupancyChart(tier) {
    const canvas = document.createElement("canvas");
    canvas.id = `occ-${tier.tier}`;
    const h = document.createElement("h3");
    h.textContent = `${tier.tier} (capacity ${(tier.capacity / GB).toFixed(1)} GB)`;
    $("occupancy").append(h, canvas);
    const n = tier.owners.length;
    const sets = tier.owners.map((ow, i) => ({
      label: ow.owner, data: tier.t.map((t, j) => ({ x: t, y: ow.bytes[j] / GB })), fill: true, stack: "used",
      pointRadius: 0, borderWidth: 0.5, stepped: true,
      backgroundColor: ow.kind === "free" ? "rgba(200,205,215,.35)" : ow.kind === "kv" ? "rgba(245,158,11,.7)"
        : ow.kind === "router" ? "rgba(30,35,48,.7)" : hwsimColor(i, n),
    }));
    sets.push({ label: "capacity", data: tier.t.map((t) => ({ x: t, y: tier.capacity / GB })), stack: "capacity",
      fill: false, pointRadius: 0, borderColor: "#b42318", borderDash: [6, 4], borderWidth: 1.5 });
    new Chart(canvas, { type: "line", data: { datasets: sets }, options: {
      animation: false, parsing: true, interaction: { mode: "nearest", intersect: false },
      scales: { x: { type: "linear", title: { display: true, text: "simulated time (s)" } },
                y: { stacked: true, title: { display: true, text: "GB" } } },
      plugins: { legend: { labels: { boxWidth: 10 } } } } });
  }

  function residency(r) {
    const canvas = $("residency"), ctx = canvas.getContext("2d");
    const rows = r.experts.map((name, i) => [name, r.rows[i]]).filter(([, bits]) => bits.includes("1"));
    const cols = r.t.length, left = 160;
    canvas.height = Math.max(60, Math.min(600, rows.length * 12));
    const rh = canvas.height / Math.max(rows.length, 1), cw = (canvas.width - left) / Math.max(cols, 1);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.font = `${Math.min(11, rh)}px system-ui`;
    rows.forEach(([name, bits], y) => {
      ctx.fillStyle = "#1d2330";
      if (rh >= 7) ctx.fillText(name.slice(0, 24), 2, y * rh + rh * 0.8);
      ctx.fillStyle = hwsimColor(y, rows.length, 0.9);
      for (let x = 0; x < bits.length; x++) if (bits[x] === "1") ctx.fillRect(left + x * cw, y * rh, Math.ceil(cw), rh - 1);
    });
  }

  function switches(sw) {
    $("switch-stats").textContent = `${sw.total} switches, mean ${sw.duration_ms_mean.toFixed(2)} ms, ` +
      `achieved ${sw.gbps_mean.toFixed(1)} GB/s on average (overhead included)` +
      (sw.total > sw.events.length ? `; first ${sw.events.length} listed` : "");
    dom.rows($("switch-table").querySelector("tbody"), sw.events.slice(0, 100).map((e) =>
      [e.t_s.toFixed(3), e.expert, (e.bytes / GB).toFixed(1), e.duration_ms.toFixed(2), e.gbps.toFixed(1),
        e.evicted.join(", ")]));
  }

  function cdf(c) {
    const line = (name, d, color) => ({ label: name, data: d.ms.map((ms, i) => ({ x: ms, y: d.q[i] })),
      showLine: true, pointRadius: 0, borderColor: color, borderWidth: 2 });
    new Chart($("cdf"), { type: "scatter", data: { datasets: [line("TTFT", c.ttft, "#3056d3"), line("end to end", c.e2e, "#b42318")] },
      options: { animation: false, scales: { x: { title: { display: true, text: "ms" } },
        y: { min: 0, max: 1, title: { display: true, text: "fraction of requests" } } } } });
  }

  const status = $("run-status").textContent;
  const preparing = () => !$("downloads-pending").hidden;
  if (status === "done" || status === "failed") finish(status);
  if (!finished || preparing()) hwsimLive({  // until the run has ended and its downloads are not being prepared
    onEvent: (ev) => {
      if (ev.data.run !== runId) return;
      if (ev.event === "hwsim.progress") show(ev.data);
      if (ev.event === "hwsim.exports") downloads(ev.data.status);
    },
    poll: () => fetch(el.dataset.statusUrl).then((r) => r.json()).then(show),
    finished: () => finished && !preparing(),
  });
})();
