// Live dashboard: catches up from /api/dashboard on every (re)connect, then folds websocket summaries in.
(function () {
  const root = document.getElementById("dash");
  const WINDOW = 60, FEED = 50, LATENCIES = 500;
  let buckets = new Map(), latencies = [], feed = [], batches = {}, experts = [], offset = 0, seen = 0;
  const $ = (id) => document.getElementById(id);
  const now = () => Date.now() / 1000 + offset;
  const colors = ["#3056d3", "#12b76a", "#f79009", "#d92d20", "#7a5af8", "#0ba5ec", "#ee46bc", "#667085", "#15b79e", "#a15c07"];

  function bar(id, label) {
    return new Chart($(id), { type: "bar", data: { labels: [], datasets: [{ label, data: [], backgroundColor: "#3056d3" }] },
      options: { animation: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } } });
  }
  const charts = {
    experts: bar("chart-experts", "requests"),
    inflight: bar("chart-inflight", "last 5 s"),
    categories: new Chart($("chart-categories"), { type: "doughnut",
      data: { labels: [], datasets: [{ data: [], backgroundColor: colors }] }, options: { animation: false } }),
    throughput: new Chart($("chart-throughput"), { type: "line",
      data: { labels: [], datasets: [{ label: "decisions/s", data: [], borderColor: "#3056d3", pointRadius: 0 }] },
      options: { animation: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } } }),
    ttft: bars("chart-serving-ttft", [["p50", "#3056d3"], ["p95", "#93b4ff"]]),
    total: bars("chart-serving-total", [["p50", "#12b76a"], ["p95", "#a6f4c5"]]),
    errors: bars("chart-serving-errors", [["not answered", "#d92d20"], ["fallback", "#f79009"]], true),
  };

  function bars(id, series, stacked) {
    return new Chart($(id), { type: "bar", data: { labels: [], datasets: series.map(([label, color]) =>
      ({ label, data: [], backgroundColor: color })) }, options: { animation: false,
      scales: { x: { stacked: !!stacked }, y: { beginAtZero: true, stacked: !!stacked } } } });
  }

  function add(t, s) {
    const key = Math.floor(t);
    const b = buckets.get(key) || { count: 0, experts: {}, categories: {}, fallbacks: 0 };
    b.count += s.count; b.fallbacks += s.fallbacks;
    for (const [k, v] of Object.entries(s.experts)) b.experts[k] = (b.experts[k] || 0) + v;
    for (const [k, v] of Object.entries(s.categories)) b.categories[k] = (b.categories[k] || 0) + v;
    buckets.set(key, b);
  }

  function totals(seconds) {
    const from = Math.floor(now()) - seconds + 1, out = { count: 0, fallbacks: 0, experts: {}, categories: {} };
    for (const [t, b] of buckets) {
      if (t < Math.floor(now()) - WINDOW) { buckets.delete(t); continue; }
      if (t < from) continue;
      out.count += b.count; out.fallbacks += b.fallbacks;
      for (const [k, v] of Object.entries(b.experts)) out.experts[k] = (out.experts[k] || 0) + v;
      for (const [k, v] of Object.entries(b.categories)) out.categories[k] = (out.categories[k] || 0) + v;
    }
    return out;
  }

  function pct(sorted, p) { return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : null; }

  function render() {
    const all = totals(WINDOW), last5 = totals(5);
    const names = [...new Set([...experts, ...Object.keys(all.experts)])];
    charts.experts.data.labels = names;
    charts.experts.data.datasets[0].data = names.map((n) => all.experts[n] || 0);
    charts.inflight.data.labels = names;
    charts.inflight.data.datasets[0].data = names.map((n) => last5.experts[n] || 0);
    const cats = Object.keys(all.categories).sort();
    charts.categories.data.labels = cats;
    charts.categories.data.datasets[0].data = cats.map((c) => all.categories[c]);
    const t0 = Math.floor(now()) - WINDOW + 1, series = [];
    for (let t = t0; t <= t0 + WINDOW - 1; t++) series.push((buckets.get(t) || { count: 0 }).count);
    charts.throughput.data.labels = series.map((_, i) => i - WINDOW + 1);
    charts.throughput.data.datasets[0].data = series;
    Object.values(charts).forEach((c) => c.update("none"));
    dom.rows($("expert-rates").tBodies[0],
      names.map((n) => [n, all.experts[n] || 0, ((last5.experts[n] || 0) / 5).toFixed(1)]));
    $("throughput").textContent = (last5.count / 5).toFixed(1);
    $("fallback-rate").textContent = all.count ? `${((100 * all.fallbacks) / all.count).toFixed(1)}%` : "–";
    const sorted = [...latencies].sort((a, b) => a - b);
    $("lat-p50").textContent = sorted.length ? pct(sorted, 0.5).toFixed(1) : "–";
    $("lat-p95").textContent = sorted.length ? pct(sorted, 0.95).toFixed(1) : "–";
    $("seen").textContent = seen;
    const active = Object.values(batches).filter((b) => b.status === "queued" || b.status === "running");
    $("queued").textContent = active.reduce((n, b) => n + b.total - b.done, 0);
    $("batches").replaceChildren(...Object.values(batches).slice(-8).map((b) =>
      dom.el("li", null, null, dom.el("a", `#${b.id}`, { href: `/batches/${encodeURIComponent(b.id)}/` }),
        ` ${b.status} ${b.done}/${b.total}`)));
    const rows = feed.map((d) => {
      const tr = document.createElement("tr");
      [d.redacted ? "(another user's prompt)" : d.prompt, d.category, d.confidence.toFixed(3), d.entropy.toFixed(3),
        d.fallback_reason || "–", d.expert, d.latency_ms.toFixed(1)]
        .forEach((v) => { const td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
      if (d.redacted) tr.cells[0].className = "muted";
      return tr;
    });
    $("feed").tBodies[0].replaceChildren(...rows);
    renderServing();
  }

  // --- Serving: answers per expert (ExpertCall) and circuit breakers. Same definitions as
  // experts/serving_selectors.py: nearest-rank percentiles; a fallback is an error of the chosen expert.
  let serving = { window_s: 900, experts: [], calls: [], truncated: false }, breakers = {}, refetch = null;
  let loaded = new Set(); // ids in the last snapshot: a live item for one of them is already counted

  function nearest(values, p) {
    const s = [...values].sort((a, b) => a - b);
    return s.length ? s[Math.max(0, Math.ceil(p * s.length) - 1)] : null;
  }

  function servingStats() {
    serving.calls = serving.calls.filter((c) => c.t >= now() - serving.window_s);
    const out = {};
    const entry = (n) => out[n] || (out[n] = { calls: 0, errors: 0, fallbacks: 0, ttft: [], total: [], simulated: false });
    for (const c of serving.calls) {
      const chosen = entry(c.primary);
      chosen.calls++;
      if (c.status === "error" || c.status === "fallback") chosen.errors++;
      if (c.status === "fallback") chosen.fallbacks++;
      if (c.status !== "ok" && c.status !== "fallback") continue;
      const answerer = entry(c.expert);
      answerer.simulated = answerer.simulated || c.simulated;
      if (c.ttft_ms != null) answerer.ttft.push(c.ttft_ms);
      if (c.total_ms != null) answerer.total.push(c.total_ms);
    }
    return out;
  }

  function breakerState(b) { return b.until && now() >= b.until ? "half_open" : b.state; }

  function renderServing() {
    const stats = servingStats(), meta = {};
    serving.experts.forEach((e) => { meta[e.name] = e; });
    const names = [...new Set([...serving.experts.map((e) => e.name), ...Object.keys(stats), ...Object.keys(breakers)])];
    const simulated = (n) => (meta[n] ? meta[n].simulated : (stats[n] || {}).simulated);
    const labels = names.map((n) => (simulated(n) ? `${n} (simulated)` : n));
    const row = (n) => stats[n] || { calls: 0, errors: 0, fallbacks: 0, ttft: [], total: [] };
    const fmt = (v) => (v == null ? "–" : v.toFixed(0));
    const fill = (chart, sets) => {
      chart.data.labels = labels;
      sets.forEach((f, i) => { chart.data.datasets[i].data = names.map((n) => f(row(n))); });
      chart.update("none");
    };
    fill(charts.ttft, [(r) => nearest(r.ttft, 0.5), (r) => nearest(r.ttft, 0.95)]);
    fill(charts.total, [(r) => nearest(r.total, 0.5), (r) => nearest(r.total, 0.95)]);
    fill(charts.errors, [(r) => r.errors - r.fallbacks, (r) => r.fallbacks]);
    $("serving-window").textContent = Math.round(serving.window_s / 60);
    $("serving-truncated").hidden = !serving.truncated;
    $("serving-table").tBodies[0].replaceChildren(...names.map((n) => {
      const r = row(n), b = breakers[n], tr = document.createElement("tr");
      tr.dataset.expert = n;
      const cells = [n, meta[n] ? meta[n].backend : "", r.calls, `${fmt(nearest(r.ttft, 0.5))} / ${fmt(nearest(r.ttft, 0.95))}`,
        `${fmt(nearest(r.total, 0.5))} / ${fmt(nearest(r.total, 0.95))}`,
        r.calls ? `${((100 * r.errors) / r.calls).toFixed(1)}%` : "–", r.fallbacks, ""];
      cells.forEach((v, i) => { const td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
      if (simulated(n)) tr.cells[0].append(" ", badge("simulated", "sim"));
      if (b) tr.cells[7].append(badge(`${breakerState(b).replace("_", "-")}${b.failures ? ` (${b.failures} failures)` : ""}`,
        `breaker-${breakerState(b)}`));
      else tr.cells[7].textContent = "–";
      return tr;
    }));
  }

  function badge(text, cls) {
    const span = document.createElement("span");
    span.className = `badge ${cls}`; span.textContent = text;
    return span;
  }

  function setServing(s) { serving = s; breakers = { ...s.breakers }; loaded = new Set(s.calls.map((c) => c.id)); }

  function refetchServing() { // a live fallback item without its chosen expert: reload the exact numbers
    if (refetch) return;
    refetch = setTimeout(() => fetch(root.dataset.snapshotUrl, { credentials: "same-origin" }).then((r) => r.json())
      .then((s) => { setServing(s.serving); schedule(); }).finally(() => { refetch = null; }), 1000);
  }

  function addServing(data) {
    for (const c of data.calls || []) {
      if (loaded.has(c.id)) continue;
      const primary = c.primary || (c.status === "fallback" ? null : c.expert);
      if (primary) serving.calls.unshift({ ...c, primary }); else refetchServing();
    }
    for (const [name, b] of Object.entries(data.breakers || {})) {
      breakers[name] = { ...b, until: b.state === "open" && b.retry_in_s != null ? now() + b.retry_in_s : null };
    }
  }

  let pending = false;
  function schedule() { if (!pending) { pending = true; setTimeout(() => { pending = false; render(); }, 250); } }

  // Catch up from the database (on every hello or resync). While the API answers an error (database down: 503 JSON)
  // the banner says so and the fetch is retried with backoff; the live socket keeps running meanwhile.
  let retryIn = 1000, retrying = null;
  function catchUp() {
    clearTimeout(retrying);
    fetch(root.dataset.snapshotUrl, { credentials: "same-origin" }).then((r) => r.json().then((body) => {
      if (!r.ok) throw new Error((body.error && body.error.message) || `HTTP ${r.status}`);
      return body;
    })).then((s) => {
      retryIn = 1000;
      coeBanner("snapshot", null);
      coeBanner("serving", s.serving.unavailable ? `Serving panel unavailable: ${s.serving.unavailable}` : null);
      offset = s.t - Date.now() / 1000;
      buckets = new Map(); s.seconds.forEach((b) => add(b.t, b));
      latencies = s.latencies.slice(0, LATENCIES); feed = s.feed.slice(0, FEED); experts = s.experts;
      batches = {}; s.batches.forEach((b) => { batches[b.id] = b; });
      $("map-version").textContent = s.map_version ? `v${s.map_version}` : "none";
      $("router-version").textContent = s.router_version ? `v${s.router_version}` : "none";
      setServing(s.serving);
      render();
    }).catch((e) => {
      coeBanner("snapshot", `Dashboard data unavailable (${e.message}) — retrying in ${Math.round(retryIn / 1000)} s…`);
      retrying = setTimeout(catchUp, retryIn);
      retryIn = Math.min(retryIn * 2, 15000);
    });
  }

  coeSocket("dashboard,map", {
    state(text) { $("ws-state").textContent = text; },
    event(name, data) {
      if (name === "hello" || name === "resync" || name === "map.changed") return catchUp();
      if (name !== "dashboard.summary") return;
      if (data.count) {
        add(data.t, data); seen += data.count;
        latencies = data.latencies.concat(latencies).slice(0, LATENCIES);
        feed = data.decisions.concat(feed).slice(0, FEED);
      }
      Object.assign(batches, data.batches);
      addServing(data);
      schedule();
    },
  });
  setInterval(render, 1000); // the windows slide even when nothing arrives

  const demo = document.getElementById("demo-form");
  if (demo) {
    const csrf = demo.querySelector("[name=csrfmiddlewaretoken]").value;
    const send = (body) => fetch(root.dataset.demoUrl, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf }, body: JSON.stringify(body) })
      .then((r) => r.json()).then((s) => {
        $("demo-state").textContent = s.error ? s.error.message : s.running ? `running at ${s.rate}/s` : "stopped";
      });
    $("demo-start").onclick = () => send({ action: "start", rate: Number($("demo-rate").value), batch: $("demo-batch").value });
    $("demo-stop").onclick = () => send({ action: "stop" });
  }
})();
