// Batch page: progress from websocket summaries, with polling of the status API as a fallback.
(function () {
  const root = document.getElementById("batch");
  const id = root.dataset.batch;
  let finished = false;
  function show(p) {
    document.getElementById("batch-status").textContent = p.status;
    document.getElementById("batch-done").textContent = p.done;
    document.getElementById("batch-progress").value = p.done;
    document.getElementById("batch-percent").textContent = p.total ? Math.floor((100 * p.done) / p.total) : 0;
    if ((p.status === "done" || p.status === "failed") && !finished) {
      finished = true;
      if (document.getElementById("accuracy-pending") || (p.errors && !document.getElementById("batch-errors"))) {
        location.reload(); // the server renders accuracy and errors
      }
    }
  }
  function poll() {
    fetch(root.dataset.statusUrl, { credentials: "same-origin" })
      .then((r) => r.json())
      .then((p) => { show({ ...p, errors: (p.errors || []).length }); if (!finished) setTimeout(poll, 1500); })
      .catch(() => setTimeout(poll, 3000));
  }
  coeSocket("dashboard", {
    event(name, data) {
      if (name === "dashboard.summary" && data.batches[id]) show(data.batches[id]);
    },
  });
  poll();
})();
