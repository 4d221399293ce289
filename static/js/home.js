// Home page: keep the map version badge current, and "Route and answer": stream an answer from /v1/chat/completions.
window.coeSocket("map", {event: (name, data) => {
  const badge = document.getElementById("map-version");
  if (name === "map.changed" && badge) badge.textContent = `v${data.version}`;
}});

(function () {
  const $ = (id) => document.getElementById(id);
  const button = $("answer-button"), stop = $("answer-stop");
  let controller = null;

  const set = (id, text) => { $(id).textContent = text; };
  const ms = (t0) => (performance.now() - t0).toFixed(0);

  function fail(message) {
    $("a-error").hidden = false;
    set("a-error", message);
    set("a-state", "failed");
  }

  function showMeta(coe) {
    set("a-category", coe.category || "– (expert named directly)");
    set("a-expert", coe.expert);
    $("a-simulated").hidden = !coe.simulated;
    const fellBack = coe.expert !== coe.chosen_expert;
    $("a-chosen-line").hidden = !fellBack;
    if (fellBack) { set("a-chosen", coe.chosen_expert); set("a-fallback", coe.fallback_reason || "unknown"); }
  }

  // One SSE event's data: a chunk (the first carries `coe`), an error object, or [DONE]. Returns true when finished.
  function handle(data, t0, seen) {
    if (data === "[DONE]") return true;
    const msg = JSON.parse(data);
    if (msg.error) { fail(msg.error.message); return true; }
    if (msg.coe) showMeta(msg.coe);
    const text = ((msg.choices || [])[0] || {}).delta?.content;
    if (text) {
      if (!seen.first) { seen.first = true; set("a-ttft", ms(t0)); }
      $("a-text").textContent += text;
    }
    return false;
  }

  async function answer() {
    const prompt = $("prompt").value;
    ["a-category", "a-expert", "a-ttft", "a-total"].forEach((id) => set(id, "–"));
    set("a-text", ""); $("a-error").hidden = true; $("a-simulated").hidden = true; $("a-chosen-line").hidden = true;
    $("answer").hidden = false;
    if (!prompt.trim()) return fail("The prompt must not be empty.");
    set("a-state", "routing…");
    button.disabled = true; stop.hidden = false;
    controller = new AbortController();
    const csrf = (document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/) || [])[1] || "";
    const t0 = performance.now(), seen = {first: false};
    try {
      const r = await fetch(button.dataset.url, {method: "POST", credentials: "same-origin", signal: controller.signal,
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
        body: JSON.stringify({model: "coe", messages: [{role: "user", content: prompt}], stream: true})});
      if (!r.ok) {
        const body = await r.text();
        let message = `${r.status} ${r.statusText}`;
        try { message = JSON.parse(body).error.message; } catch (e) { /* not our JSON error: keep the status */ }
        return fail(message);
      }
      set("a-state", "answering…");
      const reader = r.body.getReader(), decoder = new TextDecoder();
      let buffer = "", done = false;
      while (!done) {
        const {value, done: ended} = await reader.read();
        if (ended) break;
        buffer += decoder.decode(value, {stream: true});
        const events = buffer.split("\n\n");
        buffer = events.pop();
        for (const event of events) {
          const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
          if (data && handle(data, t0, seen)) { done = true; break; }
        }
      }
      set("a-total", ms(t0));
      if (!done) return fail("The answer stream ended early.");
      if ($("a-error").hidden) set("a-state", "done");
    } catch (e) {
      if (e.name === "AbortError") { set("a-total", ms(t0)); set("a-state", "stopped"); }
      else fail(e.message);
    } finally {
      button.disabled = false; stop.hidden = true; controller = null;
    }
  }

  button.addEventListener("click", answer);
  stop.addEventListener("click", () => controller && controller.abort());
})();
