// Polls the read-model API and the outcomes (from the analytics lake) and
// redraws; the browser revalidates with the ETags the API sends, so an
// unchanged poll costs a 304.
"use strict";

const POLL_MS = 2000;
const GROUPS = ["job", "education", "activity", "benefit", "moved", "none", "unknown"];
let selected = new URLSearchParams(location.search).get("program");
// `?lang=nb|da|en`; without it the server answers in the browser's
// language (Accept-Language).
const LANG = new URLSearchParams(location.search).get("lang");
// Another programme to set each share beside (`?compare_with=`).
let compareWith = new URLSearchParams(location.search).get("compare_with") ?? "";

// The page's address for what is shown, so a reload or a shared link
// shows the same.
function remember() {
  const query = new URLSearchParams({ program: selected });
  if (LANG) query.set("lang", LANG);
  if (compareWith) query.set("compare_with", compareWith);
  history.replaceState(null, "", `?${query}`);
}
let texts = {};

// The text of `key` in the page's language, `{name}`s filled in from
// `values`; the key's last part when the catalog has none.
function t(key, values = {}) {
  const text = texts[key] ?? key.split(".").pop();
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

// A metric, status or group by its label, its identifier on hover.
function labelled(kind, id) {
  const span = el("span", texts[`${kind}.${id}`] ?? id);
  span.title = id;
  return span;
}

// The texts need no sign-in; fetched once.
async function loadTexts() {
  const response = await fetch(`/v1/labels${LANG ? `?lang=${encodeURIComponent(LANG)}` : ""}`);
  if (!response.ok) throw new Error(`/v1/labels: ${response.status}`);
  const answer = await response.json();
  texts = answer.labels;
  document.documentElement.lang = answer.language;
  for (const node of document.querySelectorAll("[data-label]")) node.textContent = t(node.dataset.label);
}

// Sign-in: the token comes from the link's fragment (`#token=…`, which the
// browser never sends to a server) or the sign-in form, and is kept for
// this tab only. It goes out as a bearer header, never as a cookie, so no
// other site can make the browser use it.
const TOKEN_KEY = "utfall-token";

function takeTokenFromLink() {
  const fragment = new URLSearchParams(location.hash.slice(1)).get("token");
  if (!fragment) return false;
  sessionStorage.setItem(TOKEN_KEY, fragment);
  history.replaceState(null, "", location.pathname + location.search);
  return true;
}
takeTokenFromLink();
window.addEventListener("hashchange", () => { if (takeTokenFromLink()) poll(); });

function showSignIn(signedIn) {
  document.getElementById("sign-in").hidden = signedIn;
  document.getElementById("sign-out").hidden = !signedIn;
}

document.getElementById("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  document.getElementById("token").value = "";
  poll();
});

document.getElementById("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
});

// `null` for a 403 when `optional`: a part of the page the role may not see.
async function getJson(path, optional = false) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const response = await fetch(path, { cache: "no-cache", headers });
  if (response.status === 401) {
    showSignIn(false);
    throw new Error("sign in to see the figures");
  }
  if (optional && response.status === 403) return null;
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  showSignIn(true);
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
    button.append(el("small", t("ui.organisation_enrolled", { organisation: p.organisation, n: p.enrolled })));
    button.onclick = () => {
      selected = p.program;
      if (compareWith === selected) compareWith = "";
      remember();
      poll();
    };
    const item = el("li");
    item.append(button);
    list.append(item);
  }
  const compare = document.getElementById("compare-with");
  const others = programmes.filter((p) => p.program !== selected);
  compare.replaceChildren(compare.options[0], ...others.map((p) => {
    const option = el("option", p.name);
    option.value = p.program;
    return option;
  }));
  compare.value = compareWith;
}

document.getElementById("compare-with").addEventListener("change", (event) => {
  compareWith = event.target.value;
  remember();
  poll();
});

// This programme's share less the other's, in percentage points, with
// Newcombe's 95 % interval; the other's figures on hover.
function difference(compared) {
  if (!compared || !compared.difference) return el("span");
  const d = compared.difference;
  const points = (x) => `${x > 0 ? "+" : ""}${(100 * x).toFixed(1)}`;
  const span = el("span", t("ui.difference", { value: points(d.value), low: points(d.ci_low), high: points(d.ci_high) }), "difference");
  const o = compared.other;
  span.title = `${d.from}: ${o.numerator}/${o.denominator} = ${percent(o.value)}`;
  return span;
}

function drawSummary(s) {
  document.getElementById("programme-title").textContent = s.name;
  for (const [id, value] of [["enrolled", s.enrolled], ["active", s.active], ["exited", s.exited], ["contacts", s.contacts_last_30_days]]) {
    document.getElementById(id).textContent = value;
  }
  const counts = GROUPS.filter((g) => g in s.status_distribution).map((g) => [g, s.status_distribution[g]]);
  const max = Math.max(0, ...counts.map(([, n]) => n));
  rows(document.getElementById("status-distribution"), counts.map(([g, n]) => [labelled("group", g), n, bar(n, max)]), t("ui.no_participants_yet"));
  rows(document.getElementById("caseload"), Object.entries(s.caseload).map(([c, n]) => [c, n]), t("ui.no_caseload"));
}

const percent = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)} %`);

// The share as a marker on a 0–100 % track, its interval as a band, the
// target as a tick.
function track(m) {
  const div = el("div", undefined, "track");
  if (m.value !== null) {
    const band = el("div", undefined, "interval");
    band.style.left = `${100 * m.ci_low}%`;
    band.style.width = `${100 * (m.ci_high - m.ci_low)}%`;
    const value = el("div", undefined, "value");
    value.style.left = `${100 * m.value}%`;
    div.append(band, value);
  }
  if (m.target) {
    const tick = el("div", undefined, "target");
    tick.style.left = `${100 * m.target.value}%`;
    div.append(tick);
  }
  return div;
}

// A programme's own indicator is named with its description; one whose
// SQL failed says so instead of showing zeros as if counted.
function metricName(m) {
  if (!m.description) return labelled("metric", m.metric);
  const name = el("span", m.metric);
  name.append(el("small", m.error ? ` — ${m.description} (${t("ui.not_counted")}: ${m.error})` : ` — ${m.description}`, "indicator"));
  return name;
}

// Whether the programme is on track to meet the target by its end: the
// verdict, with the expected share and its interval on hover.
function verdict(track) {
  if (!track) return el("span");
  const e = track.expected;
  const span = el("span", t(`verdict.${track.verdict}`), `verdict ${track.verdict}`);
  span.title = e.value === null
    ? t("ui.nobody_yet")
    : `${t(`basis.${e.basis}`, { date: track.ends_on })}: ${percent(e.value)} (${percent(e.ci_low)} – ${percent(e.ci_high)})`;
  return span;
}

function drawOutcomes(o) {
  document.getElementById("outcomes-as-of").textContent = t("ui.as_of", { date: o.as_of, position: o.log_position });
  const tracks = new Map((o.on_track || []).map((t) => [t.metric, t]));
  const compared = new Map((o.compared || []).map((c) => [c.metric, c]));
  rows(document.getElementById("outcomes"), o.metrics.map((m) => [
    metricName(m),
    `${m.numerator}/${m.denominator}`,
    percent(m.value),
    m.value === null ? "–" : `${percent(m.ci_low)} – ${percent(m.ci_high)}`,
    track(m),
    m.target ? `${m.target.op === ">=" ? "≥" : "≤"} ${percent(m.target.value)}` : t("ui.no_target"),
    m.met === undefined ? el("span") : el("span", t(m.met ? "ui.met" : "ui.not_met"), m.met ? "met" : "missed"),
    verdict(tracks.get(m.metric)),
    difference(compared.get(m.metric)),
  ]), t("ui.no_participants_yet"));
  rows(document.getElementById("measurement-change"), o.measurement_change.map((c) => [
    c.instrument,
    `n=${c.paired}`,
    `${c.mean_first.toFixed(2)} → ${c.mean_last.toFixed(2)}`,
    t("ui.change_counts", { better: c.improved, same: c.unchanged, worse: c.worse }),
  ]), t("ui.no_one_measured_twice"));
  rows(document.getElementById("poor-by-wave"), o.poor_by_wave.map((p) => [
    p.instrument, t("ui.wave", { wave: p.wave }), `${p.poor}/${p.measured}`, percent(p.value),
  ]), t("ui.no_self_rated_health"));
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// A share over time or over cohorts: a point per `x` with its value, the
// 95 % interval as a band, and the target as a dashed line. Points with
// nobody to count are left out.
function seriesChart(label, points, target) {
  const [w, h, left, bottom] = [360, 130, 34, 18];
  const chart = svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "series", role: "img", "aria-label": label });
  const shown = points.filter((p) => p.value !== null);
  const x = (i) => left + (points.length < 2 ? (w - left - 8) / 2 : (i * (w - left - 8)) / (points.length - 1));
  const y = (v) => 6 + (1 - v) * (h - bottom - 6);
  for (const v of [0, 0.5, 1]) {
    chart.append(svg("line", { x1: left, x2: w - 4, y1: y(v), y2: y(v), class: "grid" }));
    chart.append(svg("text", { x: left - 4, y: y(v) + 3, "text-anchor": "end" }, `${100 * v} %`));
  }
  const at = (p) => points.indexOf(p);
  if (shown.length > 0) {
    const upper = shown.map((p) => `${x(at(p))},${y(p.high)}`);
    const lower = shown.map((p) => `${x(at(p))},${y(p.low)}`).reverse();
    chart.append(svg("polygon", { points: upper.concat(lower).join(" "), class: "band" }));
    chart.append(svg("polyline", { points: shown.map((p) => `${x(at(p))},${y(p.value)}`).join(" "), class: "line" }));
  }
  for (const p of shown) {
    const dot = svg("circle", { cx: x(at(p)), cy: y(p.value), r: 2.5 });
    dot.append(svg("title", {}, `${p.x}: ${percent(p.value)} (${percent(p.low)} – ${percent(p.high)})`));
    chart.append(dot);
  }
  if (target) chart.append(svg("line", { x1: left, x2: w - 4, y1: y(target.value), y2: y(target.value), class: "target-line" }));
  const first = points[0], last = points[points.length - 1];
  if (first) chart.append(svg("text", { x: x(0), y: h - 4, "text-anchor": "start" }, first.x));
  if (last && last !== first) chart.append(svg("text", { x: x(points.length - 1), y: h - 4, "text-anchor": "end" }, last.x));
  return chart;
}

function figure(title, chart) {
  const box = el("figure");
  box.append(chart, el("figcaption", title));
  return box;
}

// The quarterly employment rate, and each metric by year of enrolment.
function drawOverTime(o) {
  const charts = [];
  const quarters = (o.quarterly_employment || []).map((q) => ({ x: q.quarter, value: q.value, low: q.ci_low, high: q.ci_high }));
  if (quarters.length > 0) {
    charts.push(figure(t("ui.quarterly_employment"), seriesChart("quarterly employment", quarters)));
  }
  for (const m of o.metrics) {
    const cohorts = (o.cohorts || []).map((c) => {
      const share = c.metrics.find((s) => s.metric === m.metric);
      return { x: c.cohort, value: share ? share.value : null, low: share ? share.ci_low : null, high: share ? share.ci_high : null };
    });
    const name = texts[`metric.${m.metric}`] ?? m.metric;
    if (cohorts.length > 0) charts.push(figure(t("ui.by_cohort", { metric: name }), seriesChart(`${m.metric} by cohort`, cohorts, m.target)));
  }
  document.getElementById("over-time").replaceChildren(...charts);
}

// Registrars (and admins) see the participant list; other roles get 403
// and the card stays hidden.
function drawParticipants(page) {
  const card = document.getElementById("participants-card");
  card.hidden = page === null;
  if (page === null) return;
  document.getElementById("participants-shown").textContent =
    t("ui.shown_of", { shown: page.participants.length, total: page.total });
  rows(document.getElementById("participants"), page.participants.map((p) => [
    p.participant, p.enrolled_on, p.exited_on ?? "", p.current_status ?? "", p.consultant ?? "",
  ]), t("ui.no_participants"));
}

async function poll() {
  try {
    if (document.documentElement.dataset.texts === undefined) {
      await loadTexts();
      document.documentElement.dataset.texts = "loaded";
    }
    const [programmes, projections] = await Promise.all([getJson("/v1/programs"), getJson("/v1/projections")]);
    drawProgrammes(programmes);
    if (selected) {
      const program = encodeURIComponent(selected);
      drawSummary(await getJson(`/v1/programs/${program}/summary`));
      const path = `/v1/programs/${program}/outcomes?on_track=true&quarterly=true&cohorts=year`;
      let outcomes = compareWith ? await getJson(`${path}&compare_with=${encodeURIComponent(compareWith)}`, true) : null;
      // A programme whose outcomes this role may not see: no comparison.
      if (outcomes === null) {
        compareWith = "";
        outcomes = await getJson(path);
      }
      drawOutcomes(outcomes);
      drawOverTime(outcomes);
      drawParticipants(await getJson(`/v1/programs/${program}/participants?per_page=200`, true));
    }
    // Last, so that "lag 0" means everything on the page is that fresh.
    const p = projections[0];
    const lag = document.getElementById("lag");
    const stalled = projections.find((q) => q.stalled_at !== null);
    // Programmes folded by projectors of their own (`utfall project --programs`): each one's lag.
    const byProgramme = projections
      .filter((q) => q.name.startsWith("read_models/"))
      .map((q) => `${q.name.slice("read_models/".length)} at ${q.position} (lag ${q.lag})`);
    lag.textContent = stalled
      ? `figures stopped at log position ${stalled.position}: the event at ${stalled.stalled_at} cannot be read; an operator must quarantine it`
      : byProgramme.length
        ? `log at ${p.head}; programmes projected at ${byProgramme.join(", ")}`
        : `projection at ${p.position} of ${p.head} (lag ${p.lag})`;
    lag.classList.toggle("stalled", Boolean(stalled));
  } catch (error) {
    document.getElementById("lag").textContent = `cannot reach utfall: ${error.message}`;
  }
}

poll();
setInterval(poll, POLL_MS);
