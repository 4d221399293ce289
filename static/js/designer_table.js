// Designer page: quality heat-map, Pareto plot (CoE front, single experts, hull, oracle), budget slider -> map.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("design-data").textContent);
  const front = data.front;

  function heatmap() {
    const table = document.getElementById("heatmap");
    const values = data.quality.flat().filter((v) => v !== null);
    const lo = Math.min(...values), hi = Math.max(...values);
    const head = table.createTHead().insertRow();
    ["Category"].concat(data.experts).forEach((name) => {
      const th = document.createElement("th");
      th.textContent = name;
      head.appendChild(th);
    });
    const body = table.createTBody();
    data.categories.forEach((cat, c) => {
      const row = body.insertRow();
      row.insertCell().textContent = `${cat} (${(data.freq[c] * 100).toFixed(1)}%)`;
      data.quality[c].forEach((v) => {
        const cell = row.insertCell();
        cell.className = "cell";
        if (v === null) { cell.textContent = "—"; return; }
        const t = hi > lo ? (v - lo) / (hi - lo) : 1;
        cell.textContent = v.toFixed(2);
        cell.style.background = `hsl(${Math.round(t * 120)}, 70%, ${85 - t * 20}%)`;
      });
    });
  }

  // index of the best front map whose average cost is within the budget (front costs increase)
  function atBudget(budget) {
    let i = -1;
    while (i + 1 < front.costs.length && front.costs[i + 1] <= budget * (1 + 1e-9) + 1e-12) i += 1;
    return i;
  }

  // with "allow one split category": the map on the concave front at the budget (as splits.SplitFront.at_budget)
  const sf = data.split_front;
  function splitAtBudget(budget) {
    const tol = budget * 1e-9 + 1e-12;
    let k = 0;
    while (k + 1 < sf.costs.length && sf.costs[k + 1] <= budget + tol) k += 1;
    const choice = sf.start.slice();
    sf.steps.slice(0, k).forEach(([c, , to]) => { choice[c] = to; });
    if (k === sf.steps.length) return { choice: choice, split: null, cost: sf.costs[k], quality: sf.qualities[k] };
    const share = (budget - sf.costs[k]) / (sf.costs[k + 1] - sf.costs[k]);
    if (share <= 1e-9) return { choice: choice, split: null, cost: sf.costs[k], quality: sf.qualities[k] };
    const [c, , to] = sf.steps[k];
    return { choice: choice, split: { category: c, to: to, share: share }, cost: budget,
      quality: sf.qualities[k] + share * (sf.qualities[k + 1] - sf.qualities[k]) };
  }

  const points = (xs, ys) => xs.map((x, i) => ({ x: x, y: ys[i] }));
  const singles = data.experts.map((name, e) => ({ x: data.expert_cost[e], y: data.singles[e], name: name }))
    .filter((p) => p.y !== null);
  const datasets = [
    { label: "CoE front", data: points(front.costs, front.qualities), showLine: true, stepped: "before",
      borderColor: "#3056d3", backgroundColor: "#3056d3", pointRadius: 2 },
    { label: "single experts", data: singles, borderColor: "#b42318", backgroundColor: "#b42318", pointRadius: 5 },
    { label: "random-mix hull", data: points(data.hull.costs, data.hull.scores), showLine: true,
      borderColor: "#999", borderDash: [6, 4], pointRadius: 0 },
  ];
  if (sf) {
    datasets.splice(1, 0, { label: "CoE front, one split category", data: points(sf.costs, sf.qualities),
      showLine: true, borderColor: "#7a5af8", backgroundColor: "#7a5af8", pointRadius: 2 });
  }
  if (data.oracle) {
    datasets.push({ label: `per-prompt oracle (${data.oracle.prompts} prompts)`,
      data: points(data.oracle.costs, data.oracle.scores), showLine: true, borderColor: "#067647", pointRadius: 0 });
  }
  datasets.push({ label: "chosen map", data: [], borderColor: "#000", backgroundColor: "#fdb022", pointRadius: 8,
    pointStyle: "rectRot" });
  const chosen = datasets[datasets.length - 1];
  const chart = new Chart(document.getElementById("pareto"), {
    type: "scatter", data: { datasets: datasets },
    options: { animation: false, maintainAspectRatio: false,
      scales: { x: { title: { display: true, text: `average ${data.cost} parameters per prompt (B)` } },
        y: { title: { display: true, text: `expected quality (${data.scale || "table's scale"})` } } },
      plugins: { tooltip: { callbacks: { label: (ctx) => `${ctx.raw.name || ctx.dataset.label}: ` +
        `${ctx.raw.y.toFixed(3)} at ${ctx.raw.x.toFixed(1)} B` } } } },
  });

  const slider = document.getElementById("budget");
  slider.min = front.costs[0];
  slider.max = front.costs[front.costs.length - 1];
  slider.value = slider.max;

  function mapAt(budget) {
    if (sf) return splitAtBudget(budget);
    const i = atBudget(budget);
    return { choice: front.maps[i], split: null, cost: front.costs[i], quality: front.qualities[i] };
  }

  function show() {
    const budget = parseFloat(slider.value);
    const m = mapAt(budget);
    document.getElementById("budget-value").textContent = budget.toFixed(2);
    document.getElementById("map-quality").textContent = m.quality.toFixed(3);
    document.getElementById("map-cost").textContent = m.cost.toFixed(2);
    const body = document.querySelector("#budget-map tbody");
    body.replaceChildren();
    data.categories.forEach((cat, c) => {
      const row = body.insertRow();
      const e = m.choice[c];
      let model = data.experts[e], expert = data.linked[e] || "(not linked)";
      if (m.split && m.split.category === c) {
        const pct = (m.split.share * 100).toFixed(1);
        row.className = "split";
        model += ` + ${pct}% to ${data.experts[m.split.to]}`;
        expert += ` + ${pct}% to ${data.linked[m.split.to] || "(not linked)"}`;
      }
      [cat, model, expert].forEach((t) => { row.insertCell().textContent = t; });
    });
    chosen.data = [{ x: m.cost, y: m.quality, name: "chosen map" }];
    chart.update();
    const field = document.getElementById("apply-budget");
    if (field) field.value = budget;
  }
  heatmap();
  slider.addEventListener("input", show);
  show();
})();
