/* Comparison page: refresh while runs are pending, then overlay every run's TTFT CDF. */
(function () {
  const el = document.getElementById("sweep");
  const sweepId = Number(el.dataset.sweep);
  const runs = JSON.parse(document.getElementById("sweep-runs").textContent);
  const pending = () => document.getElementById("sweep-status").textContent.trim();
  if (pending() === "queued" || pending() === "running") {
    let reloading = false;
    const reload = () => { if (!reloading) { reloading = true; location.reload(); } };
    hwsimLive({
      onEvent: (ev) => { if (ev.event === "hwsim.sweep" && ev.data.sweep === sweepId) reload(); },
      poll: () => fetch(el.dataset.statusUrl).then((r) => r.json()).then((s) => {
        if (s.status === "done" || s.status === "failed") reload();
      }),
      interval: 1500, finished: () => reloading,
    });
    return;
  }
  Promise.all(runs.map((r) => fetch(r.url).then((x) => x.json()))).then((all) => {
    const done = all.filter((d) => d.status === "done");
    new Chart(document.getElementById("sweep-cdf"), { type: "scatter", data: { datasets: done.map((d, i) => ({
      label: `#${d.run} ${d.summary.machine} ${d.summary.policy}`, showLine: true, pointRadius: 0, borderWidth: 2,
      borderColor: hwsimColor(i, done.length, 1), data: d.outputs.cdf.ttft.ms.map((ms, j) => ({ x: ms, y: d.outputs.cdf.ttft.q[j] })),
    })) }, options: { animation: false, scales: { x: { type: "logarithmic", title: { display: true, text: "TTFT ms (log)" } },
      y: { min: 0, max: 1, title: { display: true, text: "fraction of requests" } } } } });
  });
})();
