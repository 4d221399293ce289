/* DOM builders that never parse data as HTML (CSP without inline script; no innerHTML anywhere). */
window.dom = (function () {
  /** An element with text content and attributes (href, className, …); children appended after the text. */
  function el(tag, text, attrs, ...children) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    Object.entries(attrs || {}).forEach(([k, v]) => { if (k === "className") node.className = v; else node.setAttribute(k, v); });
    children.forEach((c) => node.append(c));
    return node;
  }

  /** Replace a table body's rows: one <tr> per array, one <td> per value (values shown as text). */
  function rows(tbody, data) {
    tbody.replaceChildren(...data.map((cells) => el("tr", null, null, ...cells.map((v) => el("td", v)))));
  }

  /** Replace a <dl>'s content with [term, value] pairs; ``ddClass(term)`` optionally names each <dd>'s class. */
  function facts(dl, pairs, ddClass) {
    dl.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", k), el("dd", v, ddClass ? { className: ddClass(k) } : null)]));
  }

  return { el, rows, facts };
})();
