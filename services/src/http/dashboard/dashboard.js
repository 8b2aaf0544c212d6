// Polls the read-model API and redraws; the browser revalidates with the
// ETags the API sends, so an unchanged poll costs a 304.
"use strict";

const POLL_MS = 2000;
const GROUPS = ["job", "education", "activity", "benefit", "moved", "none", "unknown"];
let selected = new URLSearchParams(location.search).get("program");

async function getJson(path) {
  const response = await fetch(path, { cache: "no-cache" });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function rows(table, entries, emptyText) {
  table.replaceChildren();
  if (entries.length === 0) {
    const row = table.insertRow();
    row.append(el("td", emptyText, "empty"));
    return;
  }
  for (const cells of entries) {
    const row = table.insertRow();
    for (const cell of cells) row.append(cell instanceof Node ? wrap(cell) : el("td", String(cell), typeof cell === "number" ? "n" : undefined));
  }
}

function wrap(node) {
  const td = el("td");
  td.append(node);
  return td;
}

function bar(count, max) {
  const div = el("div", undefined, "bar");
  div.style.width = `${max ? (100 * count) / max : 0}%`;
  return div;
}

function drawProgrammes(programmes) {
  if (!selected && programmes.length) selected = programmes[0].program;
  const list = document.getElementById("programmes");
  list.replaceChildren();
  for (const p of programmes) {
    const button = el("button", p.name);
    button.dataset.program = p.program;
    button.setAttribute("aria-current", String(p.program === selected));
    button.append(el("small", `${p.organisation} · ${p.enrolled} enrolled`));
    button.onclick = () => { selected = p.program; history.replaceState(null, "", `?program=${p.program}`); poll(); };
    const item = el("li");
    item.append(button);
    list.append(item);
  }
}

function drawSummary(s) {
  document.getElementById("programme-title").textContent = s.name;
  for (const [id, value] of [["enrolled", s.enrolled], ["active", s.active], ["exited", s.exited], ["contacts", s.contacts_last_30_days]]) {
    document.getElementById(id).textContent = value;
  }
  const counts = GROUPS.filter((g) => g in s.status_distribution).map((g) => [g, s.status_distribution[g]]);
  const max = Math.max(0, ...counts.map(([, n]) => n));
  rows(document.getElementById("status-distribution"), counts.map(([g, n]) => [g, n, bar(n, max)]), "no participants yet");
  rows(document.getElementById("targets"),
    s.targets.map((t) => [t.metric, `${t.op} ${(100 * t.value).toFixed(0)} %`, `since ${t.set_on}`]), "no targets set");
  rows(document.getElementById("measurements"),
    s.latest_measurements.map((m) => [m.instrument,
      m.first_wave_mean_composite === null ? "–" : m.first_wave_mean_composite.toFixed(2),
      `${m.mean_composite.toFixed(2)} (wave ${m.wave ?? "–"}, n=${m.measured})`]), "no measurements yet");
  rows(document.getElementById("caseload"), Object.entries(s.caseload).map(([c, n]) => [c, n]), "no active participants");
}

async function poll() {
  try {
    const [programmes, projections] = await Promise.all([getJson("/v1/programs"), getJson("/v1/projections")]);
    drawProgrammes(programmes);
    const p = projections[0];
    document.getElementById("lag").textContent = `projection at ${p.position} of ${p.head} (lag ${p.lag})`;
    if (selected) drawSummary(await getJson(`/v1/programs/${encodeURIComponent(selected)}/summary`));
  } catch (error) {
    document.getElementById("lag").textContent = `cannot reach utfall: ${error.message}`;
  }
}

poll();
setInterval(poll, POLL_MS);
