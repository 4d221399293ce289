// Map editor: impact preview of the draft, a live "newer version exists" banner, router retraining progress, and
// expert backend forms that show only the chosen backend's settings.
(function () {
  const form = document.getElementById("map-form");
  const base = Number(form.dataset.baseVersion);
  const csrf = (document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || "";
  const $ = (id) => document.getElementById(id);
  const billions = (x) => (x / 1e9).toFixed(1) + " B";

  async function postJSON(url, body) {
    const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
                                body: JSON.stringify(body), credentials: "same-origin"});
    const data = await r.json();
    if (!r.ok) throw new Error(data.error ? data.error.message : r.statusText);
    return data;
  }

  function draft() {
    const out = {};
    form.querySelectorAll("input[type=radio]:checked").forEach((el) => { out[el.name.slice(7)] = el.value; });
    return out;
  }

  function splits() {  // the split columns, shares typed in percent
    const out = {};
    form.querySelectorAll("select[name^='split-']").forEach((el) => {
      const share = Number(form.querySelector(`input[name='share-${el.name.slice(6)}']`).value);
      if (el.value && share > 0 && share < 100) out[el.name.slice(6)] = {expert: el.value, share: share / 100};
    });
    return out;
  }

  async function preview() {
    const p = await postJSON("/api/map/preview", {assignments: draft(), splits: splits(), n: 1000});
    $("preview").hidden = false;
    $("preview-n").textContent = p.decisions;
    $("preview-changed").textContent = p.changed;
    $("preview-params").textContent = `${billions(p.avg_active_params_before)} → ${billions(p.avg_active_params_after)}`;
    $("preview-switches").textContent = `${p.switches.before} → ${p.switches.after}`;
    const body = $("preview-table").querySelector("tbody");
    body.replaceChildren();
    for (const [name, c] of Object.entries(p.per_expert)) {
      const tr = document.createElement("tr");
      if (c.before !== c.after) tr.className = "changed";
      for (const v of [name, c.before, c.after]) { const td = document.createElement("td"); td.textContent = v; tr.appendChild(td); }
      body.appendChild(tr);
    }
  }

  function onEvent(name, data) {
    if (name === "map.changed" && data.version > base) {
      const banner = $("stale-banner");
      banner.hidden = false;
      banner.textContent = `Version v${data.version} was published by ${data.author || "someone"} while you edit ` +
        `(your draft is based on v${base}). Saving will be refused: reload, re-apply your change and save.`;
      $("map-version").textContent = `v${data.version}`;
    } else if (name === "router.training" && $("retrain-log")) {
      const li = document.createElement("li");
      const c = data.candidate;
      li.textContent = `${c.classifier} ${JSON.stringify(c.params)}: cv accuracy ${c.cv_accuracy.toFixed(3)}`;
      $("retrain-log").appendChild(li);
    } else if (name === "router.trained" && $("retrain-result")) {
      showResult(data);
    }
  }

  function showResult(r) {
    $("retrain-result").textContent = `Router v${r.router_version}: accuracy ${r.new_accuracy.toFixed(3)}` +
      (r.previous_accuracy === null ? "" : ` (active v${r.previous_version}: ${r.previous_accuracy.toFixed(3)})`) +
      (r.activated ? " — activated." : " — kept inactive (validates worse).");
    if (r.activated && $("router-version")) $("router-version").textContent = `v${r.router_version}`;
  }

  async function retrain() {
    $("retrain-button").disabled = true;
    $("retrain-result").textContent = "Training…";
    const {task_id} = await postJSON("/api/router/retrain", {override: $("retrain-override").checked});
    const poll = async () => {  // fallback when the websocket is not connected
      const s = await (await fetch(`/api/router/retrain/${task_id}`, {credentials: "same-origin"})).json();
      if (s.state === "SUCCESS") { showResult(s); $("retrain-button").disabled = false; }
      else if (s.state === "FAILURE") { $("retrain-result").textContent = `Failed: ${s.error}`; $("retrain-button").disabled = false; }
      else setTimeout(poll, 2000);
    };
    setTimeout(poll, 2000);
  }

  // Expert backend forms: show the settings of the chosen backend only (hidden ones are still sent, unchanged).
  document.querySelectorAll(".backend-form").forEach((f) => {
    const kind = f.querySelector("select[name=backend]");
    const show = () => f.querySelectorAll("fieldset[data-backend]").forEach((fs) => {
      fs.hidden = fs.dataset.backend !== "" && fs.dataset.backend !== kind.value;
    });
    kind.addEventListener("change", show);
    show();
  });
  const refused = document.querySelector(".backend-form .expert-error");
  if (refused) refused.scrollIntoView({block: "center"});

  if ($("preview-button")) $("preview-button").addEventListener("click", () => preview().catch((e) => alert(e.message)));
  if ($("retrain-button")) $("retrain-button").addEventListener("click", () => retrain().catch((e) => {
    $("retrain-result").textContent = e.message; $("retrain-button").disabled = false; }));
  window.coeSocket("map", {event: onEvent});
})();
