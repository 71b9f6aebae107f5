// The console's only script: the overview updates itself, and "Try a mapping" offers the chosen flow's examples.
// Everything else works without it. No inline scripts (the Content-Security-Policy forbids them) and no
// innerHTML: values from the server are set as text only.
"use strict";

function updateOverview(section, data) {
  for (const flow of data.flows) {
    const row = section.querySelector(`tr[data-flow="${CSS.escape(flow.flow)}"]`);
    if (!row) continue;
    for (const cell of row.querySelectorAll("[data-field]")) {
      const value = String(flow[cell.dataset.field]);
      const target = cell.querySelector("a") || cell;
      if (target.textContent !== value) {
        target.textContent = value;
        cell.classList.remove("changed");
        void cell.offsetWidth;  // restart the highlight
        cell.classList.add("changed");
      }
      if (cell.dataset.field === "failed") target.classList.toggle("bad", value !== "0");
    }
  }
  const settling = section.querySelector('[data-list="settling"]');
  const items = data.flows.flatMap((f) => f.settling.map((s) => `${f.flow}: ${s}`));
  replaceChildren(settling, items.length ? items.map((text) => element("li", text)) :
    [element("li", settling.dataset.empty, "muted")]);
  const places = section.querySelector('[data-list="places"]');
  const labels = (places.dataset.labels || "||").split("|");
  const rows = data.places.map((p) => {
    const tr = element("tr", null, p.failing_since ? "failing" : "");
    const cells = [element("td", p.place, "place"), element("td", p.last_ok), element("td", p.failing_since),
      element("td", p.error, "error-text")];
    cells.slice(1).forEach((cell, i) => { cell.dataset.label = labels[i]; });
    tr.append(...cells);
    return tr;
  });
  if (!rows.length) {
    const tr = element("tr");
    const td = element("td", places.dataset.empty, "muted");
    td.colSpan = 4;
    tr.append(td);
    rows.push(tr);
  }
  replaceChildren(places, rows);
}

function element(tag, text, className) {
  const el = document.createElement(tag);
  if (text !== null && text !== undefined) el.textContent = text;
  if (className) el.className = className;
  return el;
}

function replaceChildren(parent, children) {
  parent.replaceChildren(...children);
}

function pollOverview(section) {
  const url = section.dataset.pollUrl;
  const every = Number(section.dataset.pollMs) || 2000;
  const note = document.getElementById("updated");
  async function tick() {
    try {
      const response = await fetch(url, {credentials: "same-origin", cache: "no-store"});
      if (response.status === 403 || response.redirected) { window.location.reload(); return; }
      if (!response.ok) throw new Error(String(response.status));
      updateOverview(section, await response.json());
      note.textContent = "";
      section.dataset.updated = String(Date.now());
    } catch (err) {
      note.textContent = note.dataset.stale;
    }
    setTimeout(tick, every);
  }
  setTimeout(tick, every);
}

function linkExamples() {
  const flow = document.getElementById("try-flow");
  const cases = document.getElementById("try-case");
  const file = document.getElementById("try-file");
  if (!flow || !cases) return;
  function show() {
    for (const group of cases.querySelectorAll("optgroup")) {
      const mine = group.dataset.flow === flow.value;
      group.hidden = !mine;
      group.disabled = !mine;
    }
    const chosen = cases.selectedOptions[0];
    if (chosen && chosen.dataset.flow && chosen.dataset.flow !== flow.value) cases.value = "";
  }
  flow.addEventListener("change", show);
  cases.addEventListener("change", () => { if (cases.value && file) file.value = ""; });
  if (file) file.addEventListener("change", () => { if (file.value) cases.value = ""; });
  show();
}

document.addEventListener("DOMContentLoaded", () => {
  const section = document.getElementById("overview");
  if (section) pollOverview(section);
  linkExamples();
});
