/* swarm-engine dashboard: hash routes, one render function per page, JSON
   from /api, live progress from server-sent events. No framework, no build. */
"use strict";

const $main = document.getElementById("main");
const G = window.swarmGraph;
let INFO = { defaults: { runs: 1000, seed: 42 }, providers: ["none"] };
let cleanup = [];                                  // event sources and timers of the current page

// ------------------------------------------------------------------ helpers
function esc(s) {
  return String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function h(html) { const t = document.createElement("template"); t.innerHTML = html.trim(); return t.content.firstChild; }
const pct = (x, d = 1) => (x === null || x === undefined ? "–" : (100 * x).toFixed(d) + "%");
const num = (x, d = 1) => (x === null || x === undefined ? "–" : (+x).toFixed(d));
function si(x) {
  if (x === null || x === undefined) return "–";
  for (const [div, u] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) if (Math.abs(x) >= div) return (x / div).toFixed(2) + u;
  return Math.abs(x) >= 10 ? x.toFixed(0) : (+x).toPrecision(2);
}
function ago(t) {
  const s = Date.now() / 1000 - t;
  if (s < 60) return "just now";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago";
  return new Date(t * 1000).toLocaleString();
}
async function api(path, opts) {
  opts = opts || {};
  const init = { method: opts.method || "GET", headers: {} };
  if (init.method === "POST") { init.body = JSON.stringify(opts.body || {}); init.headers["Content-Type"] = "application/json"; }
  let r;
  try { r = await fetch(path, init); } catch (e) { throw new Error("the dashboard server does not answer (" + e.message + ")"); }
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) throw new Error((data && data.error) || `${r.status} ${r.statusText}`);
  return data;
}
function errorBox(msg) { return `<div class="error" role="alert">${esc(msg)}</div>`; }
function toast(msg) {
  const t = document.getElementById("toast");
  t.textContent = msg; t.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, 3500);
}
function stream(path, handlers) {
  const es = new EventSource(path);
  for (const [type, fn] of Object.entries(handlers)) es.addEventListener(type, (e) => fn(JSON.parse(e.data)));
  es.addEventListener("end", () => es.close());
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) return; };
  cleanup.push(() => es.close());
  return es;
}
function ciBar(lo, hi, p, dom) {
  if (lo === null || lo === undefined) return `<div class="ci"></div>`;
  const [a, b] = dom || [0, 1], at = (x) => 100 * (x - a) / (b - a);
  return `<div class="ci" title="95% interval ${pct(lo)} – ${pct(hi)}">
    <div class="band" style="left:${at(lo)}%;width:${Math.max(0.4, at(hi) - at(lo))}%"></div>
    ${p === null || p === undefined ? "" : `<div class="pt" style="left:${at(p)}%"></div>`}</div>`;
}
/** A scale [a, b] around every interval given, so that close rates near 100% stay apart on screen. */
function ciDomain(cis, least) {
  const lo = Math.min(...cis.map((c) => c[0])), hi = Math.max(...cis.map((c) => c[1]));
  const pad = Math.max(least || 0.005, (hi - lo) * 0.15);
  return [Math.max(0, lo - pad), Math.min(1, hi + pad)];
}
function setActive(page) {
  document.querySelectorAll(".nav nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
}

// ------------------------------------------------------------------ router
const routes = [
  [/^#\/scenarios(?:\/([\w]+))?$/, "scenarios", pageScenarios],
  [/^#\/live$/, "live", pageLive],
  [/^#\/eval\/(\w+)$/, "live", pageEval],
  [/^#\/run\/(\w+)$/, "live", pageRun],
  [/^#\/reports$/, "reports", pageReports],
  [/^#\/report\/([^/]+)\/run\/(\d+)$/, "reports", pageTrace],       // trace.js
  [/^#\/report\/(.+)$/, "reports", pageReport],
  [/^#\/compare\/(.+)$/, "reports", pageCompare],
  [/^#\/learning(?:\/(.+))?$/, "learning", pageLearning],
  [/^#\/servers$/, "servers", pageServers],
];
async function route() {
  cleanup.forEach((f) => f()); cleanup = [];
  const hash = location.hash || "#/scenarios";
  for (const [re, page, fn] of routes) {
    const m = hash.match(re);
    if (m) {
      setActive(page);
      try { await fn(...m.slice(1).map((x) => (x === undefined ? undefined : decodeURIComponent(x)))); }
      catch (e) { $main.innerHTML = errorBox(e.message); }
      return;
    }
  }
  $main.innerHTML = errorBox(`no such page: ${hash}`);
}
window.addEventListener("hashchange", route);

// ------------------------------------------------------------------ scenarios
async function pageScenarios(sid) {
  $main.innerHTML = `<div class="head"><div><h1>Scenarios</h1><p class="sub">Every scenario file found: built-in, yours, the project's and those named on the command line.</p></div></div>
    <div class="grid2"><div class="list" id="slist"><div class="loading">reading scenarios&hellip;</div></div><div id="sdetail"></div></div>`;
  const data = await api("/api/scenarios");
  const list = document.getElementById("slist");
  if (!data.scenarios.length) { list.innerHTML = `<div class="empty">No scenario files found.</div>`; return; }
  list.innerHTML = data.scenarios.map((s) => `
    <a class="item ${s.error ? "broken" : ""} ${s.id === sid ? "sel" : ""}" href="#/scenarios/${s.id}" data-sid="${s.id}">
      <div class="t">${esc(s.name || s.file)} ${s.error ? '<span class="chip bad">error</span>' : ""}</div>
      <div class="m">${esc(s.file)} &middot; ${esc(s.origin)}${s.environment ? " &middot; " + esc(s.environment) : ""}${s.actions ? " &middot; " + s.actions.length + " actions" : ""}</div>
    </a>`).join("");
  const chosen = data.scenarios.find((s) => s.id === sid) || (sid ? null : data.scenarios.find((s) => !s.error) || data.scenarios[0]);
  if (!chosen) { document.getElementById("sdetail").innerHTML = errorBox(`no scenario with id '${sid}'`); return; }
  if (!sid) list.querySelector(`[data-sid="${chosen.id}"]`).classList.add("sel");
  renderScenario(chosen);
}

function renderScenario(s) {
  const el = document.getElementById("sdetail");
  if (s.error) {
    el.innerHTML = `<div class="panel"><h2>${esc(s.file)}</h2><p class="sub mono">${esc(s.path)}</p>
      <p>This file does not load:</p>${errorBox(s.error)}<p class="sub">Fix the file and reload the page.</p></div>`;
    return;
  }
  const variants = s.variants || [];
  el.innerHTML = `
    <div class="panel">
      <div class="head" style="margin-bottom:8px"><div><h2 style="font-size:19px">${esc(s.name)}</h2>
        <p class="sub mono">${esc(s.path)}</p></div>
        <div>${(s.tags || []).map((t) => `<span class="chip">${esc(t)}</span>`).join("")}</div></div>
      <p>${esc(s.description)}</p>
      <div class="kv"><div>Task</div><div><b>${esc(s.goal)}</b></div>
        ${s.expected ? `<div>Expected</div><div>${esc(s.expected)}</div>` : ""}
        <div>Engine</div><div><span class="chip accent">${esc(s.environment)}</span><span class="chip">${s.workers} worker${s.workers === 1 ? "" : "s"}</span><span class="chip">max ${s.max_ticks} ticks</span><span class="chip">${esc(s.selector)}</span>${s.llm_managed ? `<span class="chip warn">LLM: ${esc(s.llm_provider)}</span>` : '<span class="chip">no LLM</span>'}</div></div>
    </div>
    <div class="panel" id="runpanel">
      <h2>Run it</h2>
      <form class="inline" id="evalform">
        <label>Runs<input name="runs" type="number" min="1" value="${INFO.defaults.runs}" required></label>
        <label>Seed<input name="seed" type="number" min="0" value="${INFO.defaults.seed}" required></label>
        <label>Variant<select name="variant"><option value="">(none)</option>${variants.map((v) => `<option value="${esc(v.name)}" ${v.name === s.variant ? "selected" : ""}>${esc(v.name)}</option>`).join("")}</select></label>
        <label>Provider<select name="provider"><option value="">(scenario's: ${esc(s.llm_provider)})</option>${INFO.providers.map((p) => `<option>${esc(p)}</option>`).join("")}</select></label>
        <label title="The pace of a watched single run">Run pace<select name="tps">${[1, 2, 4, 8, 16, 0].map((v) => `<option value="${v}" ${v === 4 ? "selected" : ""}>${v ? v + " ticks/s" : "max"}</option>`).join("")}</select></label>
        <button type="submit" id="start-eval">Start eval</button>
        <button type="button" class="ghost" id="start-run" title="One run, tick by tick, its exploration graph drawn live">Watch one run</button>
      </form>
      <div id="evalout"></div>
    </div>
    <div class="panel"><h2>Dependency graph</h2>
      <div class="legend"><span style="--c:#16a34a">start</span><span style="--c:#6366f1">terminal</span><span style="--c:#aeb4c8">action</span></div>
      <div class="graph" id="dag"></div></div>
    <div class="panel"><h2>Actions</h2><table><thead><tr><th>Action</th><th>Description</th><th>Kind</th><th>Params</th></tr></thead>
      <tbody>${s.actions.map((a) => `<tr><td><b>${esc(a.name)}</b></td><td>${esc(a.description)}</td><td><span class="chip">${esc(a.category)}</span></td><td class="mono">${esc(a.params.join(", "))}</td></tr>`).join("")}</tbody></table></div>
    ${variants.length ? `<div class="panel"><h2>Variants</h2><table><tbody>${variants.map((v) => `<tr><td><b>${esc(v.name)}</b></td><td>${esc(v.description)}</td></tr>`).join("")}</tbody></table></div>` : ""}`;
  if (s.graph) G.drawDag(document.getElementById("dag"), s.graph);
  else document.getElementById("dag").innerHTML = `<div class="note" style="margin:12px">This graph is planned by the LLM when the task starts (dependency_graph type "${esc(s.graph_type)}").</div>`;
  const form = document.getElementById("evalform");
  const values = () => {
    const f = new FormData(form);
    return { scenario: s.id, runs: f.get("runs"), seed: f.get("seed"), variant: f.get("variant") || null,
             provider: f.get("provider") || null };
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = document.getElementById("evalout");
    out.innerHTML = "";
    try {
      const job = await api("/api/evals", { method: "POST", body: values() });
      out.appendChild(h(`<div id="evallive"></div>`));
      watchEval(job, document.getElementById("evallive"));
    } catch (e) { out.innerHTML = errorBox(e.message); }
  });
  document.getElementById("start-run").addEventListener("click", async () => {
    const out = document.getElementById("evalout");
    try {
      const v = values();
      const run = await api("/api/runs", { method: "POST", body: { scenario: v.scenario, seed: v.seed, variant: v.variant, provider: v.provider, ticks_per_second: +new FormData(form).get("tps") } });
      location.hash = `#/run/${run.id}`;
    } catch (e) { out.innerHTML = errorBox(e.message); }
  });
}

// ------------------------------------------------------------------ a live eval
function watchEval(job, host) {
  host.innerHTML = `
    <div class="eval-live" data-job="${job.id}">
      <div class="toolbar" style="justify-content:space-between;margin:14px 0 8px">
        <div><b>${esc(job.scenario)}</b> ${job.variant ? `<span class="chip">${esc(job.variant)}</span>` : ""} <span class="chip" id="ev-state">${esc(job.state)}</span>
        ${job.origin === "cli" ? `<span class="chip accent" title="started by swarm eval --gui; Stop is its Ctrl-C">command line</span>` : ""}
        <span class="sub">seeds ${job.seed}..${+job.seed + +job.runs - 1}</span></div>
        <button class="danger" id="ev-stop">Stop</button></div>
      <div class="bar"><span id="ev-bar" style="width:0%"></span></div>
      <div class="cards" style="margin-top:12px">
        <div class="card"><div class="k">Runs done</div><div class="v" id="ev-done">0</div><div class="s">of ${job.runs}</div></div>
        <div class="card"><div class="k">Success rate</div><div class="v" id="ev-rate">–</div><div class="s" id="ev-ok">0 successes</div></div>
        <div class="card"><div class="k">95% interval</div><div class="v" id="ev-ci" style="font-size:17px">–</div><div class="s" id="ev-width"></div></div>
        <div class="card"><div class="k" id="ev-apsk">Actions / s</div><div class="v" id="ev-aps">–</div><div class="s" id="ev-rps"></div></div>
      </div>
      <div class="note" id="ev-llm" hidden></div>
      <div id="ev-cibar">${ciBar(null)}</div><div class="ci-scale" id="ev-scale"><span>0%</span><span>50%</span><span>100%</span></div>
      <div id="ev-sparkbox" hidden><h3>The 95% interval narrowing as runs come in</h3><svg class="spark" id="ev-spark" preserveAspectRatio="none"></svg></div>
      <div id="ev-end"></div>
    </div>`;
  const hist = [];
  const q = (id) => host.querySelector("#" + id);
  q("ev-stop").addEventListener("click", () => api(`/api/evals/${job.id}/stop`, { method: "POST" }).catch((e) => toast(e.message)));
  const progress = (p) => {
    q("ev-bar").style.width = (100 * p.done / p.requested) + "%";
    q("ev-done").textContent = p.done.toLocaleString();
    q("ev-rate").textContent = pct(p.success_rate);
    q("ev-ok").textContent = `${p.successes.toLocaleString()} successes`;
    q("ev-ci").textContent = `${pct(p.ci95[0])} – ${pct(p.ci95[1])}`;
    q("ev-width").textContent = `± ${pct((p.ci95[1] - p.ci95[0]) / 2, 2)}`;
    if (p.actions_per_sec === null && p.runs_per_sec !== null) {     // counted per run only (command line, LLM)
      q("ev-apsk").textContent = "Runs / s"; q("ev-aps").textContent = si(p.runs_per_sec);
      q("ev-rps").textContent = `${num(p.elapsed, 1)} s`;
    } else {
      q("ev-apsk").textContent = "Actions / s"; q("ev-aps").textContent = si(p.actions_per_sec);
      q("ev-rps").textContent = `${si(p.runs_per_sec)} runs/s, ${num(p.elapsed, 1)} s`;
    }
    if (p.llm) {
      const m = p.llm, el = q("ev-llm");
      el.hidden = false; el.classList.toggle("bad", m.failed > 0);
      el.textContent = `model: ${m.in_flight} calls in flight, ${m.applied.toLocaleString()} decisions applied (${num(m.decisions_per_sec || 0, 2)}/s)${m.failed ? `, ${m.failed} failed` : ""}`;
    }
    hist.push([p.done, p.ci95[0], p.ci95[1], p.success_rate]);
    const dom = ciDomain([hist[0].slice(1, 3), p.ci95], 0.02);
    q("ev-cibar").innerHTML = ciBar(p.ci95[0], p.ci95[1], p.success_rate, dom);
    q("ev-scale").innerHTML = `<span>${pct(dom[0])}</span><span>${pct((dom[0] + dom[1]) / 2)}</span><span>${pct(dom[1])}</span>`;
    if (hist.length >= 3) { q("ev-sparkbox").hidden = false; drawSpark(q("ev-spark"), hist, p.requested, dom); }
  };
  if (job.progress) progress(job.progress);
  stream(`/api/evals/${job.id}/events`, {
    state: (e) => { q("ev-state").textContent = e.state; },
    progress,
    warning: (e) => q("ev-end").insertAdjacentHTML("beforeend", `<div class="note">${esc(e.message)}</div>`),
    done: (e) => {
      q("ev-state").textContent = e.state; q("ev-state").className = "chip ok"; q("ev-stop").hidden = true;
      q("ev-end").innerHTML = e.report ? `<p class="eval-done">Finished: <a href="#/report/${encodeURIComponent(e.report)}">open the report</a> <span class="sub mono">${esc(e.report)}</span></p>` : `<p>Stopped before any run finished.</p>`;
    },
    error: (e) => { q("ev-state").textContent = "failed"; q("ev-state").className = "chip bad"; q("ev-stop").hidden = true; q("ev-end").innerHTML = errorBox(e.error); },
  });
}

function drawSpark(svg, pts, total, dom) {
  const W = svg.clientWidth || 600, H = 120, [a, b] = dom || [0, 1];
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  // runs on a log scale: the interval narrows like 1/sqrt(n), most of it in the first runs
  const x = (d) => 4 + (W - 8) * Math.log1p(d) / Math.log1p(Math.max(1, total)), y = (v) => H - 6 - (H - 12) * (v - a) / (b - a);
  const band = pts.map((p) => `${x(p[0])},${y(p[2])}`).concat(pts.slice().reverse().map((p) => `${x(p[0])},${y(p[1])}`)).join(" ");
  const line = pts.map((p) => `${x(p[0])},${y(p[3] || 0)}`).join(" ");
  svg.innerHTML = `<polygon points="${band}" fill="rgba(99,102,241,.18)" stroke="none"/>
    <polyline points="${line}" fill="none" stroke="#6366f1" stroke-width="2"/>
    <text x="${W - 4}" y="12" text-anchor="end" font-size="10" fill="#6b7285">${pct(b)}</text>
    <text x="${W - 4}" y="${H - 8}" text-anchor="end" font-size="10" fill="#6b7285">${pct(a)}</text>`;
}

// ------------------------------------------------------------------ live: evals and runs
async function pageLive() {
  $main.innerHTML = `<div class="head"><div><h1>Live</h1><p class="sub">Evals and single runs started from this dashboard, and evals of <span class="mono">swarm eval --gui</span>.</p></div></div>
    <div class="cols"><div class="panel"><h2>Evals</h2><div id="levals" class="list"></div></div>
    <div class="panel"><h2>Single runs</h2><div id="lruns" class="list"></div></div></div>`;
  const refresh = async () => {
    const [ev, rn] = await Promise.all([api("/api/evals"), api("/api/runs")]);
    document.getElementById("levals").innerHTML = ev.evals.length ? ev.evals.map((j) => `
      <a class="item" href="#/eval/${j.id}"><div class="t">${esc(j.scenario)} <span class="chip ${j.state === "failed" ? "bad" : j.state === "done" ? "ok" : "accent"}">${esc(j.state)}</span></div>
      <div class="m">${j.origin === "cli" ? "command line &middot; " : ""}${j.runs} runs from seed ${j.seed}${j.progress ? ` &middot; ${j.progress.done} done, ${pct(j.progress.success_rate)}` : ""} &middot; ${ago(j.created)}</div></a>`).join("")
      : `<div class="empty">No evals yet: start one from a scenario's page.</div>`;
    document.getElementById("lruns").innerHTML = rn.runs.length ? rn.runs.map((r) => `
      <a class="item" href="#/run/${r.id}"><div class="t">${esc(r.scenario)} <span class="chip ${r.state === "failed" ? "bad" : r.state === "done" ? "ok" : "accent"}">${esc(r.state)}</span></div>
      <div class="m">seed ${r.seed} &middot; ${r.workers} workers${r.last ? ` &middot; tick ${r.last.tick}, ${r.last.nodes} nodes` : ""}</div></a>`).join("")
      : `<div class="empty">No runs yet: press "Watch one run" on a scenario's page.</div>`;
  };
  await refresh();
  const t = setInterval(() => refresh().catch(() => {}), 1500);
  cleanup.push(() => clearInterval(t));
}

async function pageEval(jid) {
  const job = await api(`/api/evals/${jid}`);
  $main.innerHTML = `<div class="head"><div><h1>Eval ${esc(job.id)}</h1><p class="sub mono">${esc(job.path)}</p></div><a href="#/live">all live work</a></div><div class="panel" id="evhost"></div>`;
  watchEval(job, document.getElementById("evhost"));
}

async function pageRun(rid) {
  const run = await api(`/api/runs/${rid}`);
  $main.innerHTML = `
    <div class="head"><div><h1>${esc(run.scenario)} <span class="chip" id="rn-state">${esc(run.state)}</span></h1>
      <p class="sub">seed ${run.seed} &middot; ${run.workers} workers &middot; max ${run.max_ticks} ticks${run.variant ? " &middot; variant " + esc(run.variant) : ""}</p></div>
      <div class="toolbar"><label>Ticks / s<select id="rn-speed">${[1, 2, 4, 8, 16, 32, 0].map((v) => `<option value="${v}" ${v === run.ticks_per_second ? "selected" : ""}>${v || "max"}</option>`).join("")}</select></label>
      <button class="danger" id="rn-stop">Stop</button></div></div>
    <div class="cards">
      <div class="card"><div class="k">Tick</div><div class="v" id="rn-tick">0</div><div class="s">of ${run.max_ticks}</div></div>
      <div class="card"><div class="k">Graph nodes</div><div class="v" id="rn-nodes">0</div><div class="s" id="rn-new"></div></div>
      <div class="card"><div class="k">Actions</div><div class="v" id="rn-actions">0</div><div class="s" id="rn-failed"></div></div>
      <div class="card"><div class="k">Workers</div><div class="v" id="rn-workers" style="font-size:15px;line-height:1.9">–</div></div>
    </div>
    ${run.llm_managed ? decisionsPanel() : ""}
    <div class="grid2" style="grid-template-columns: 1fr minmax(280px, 380px)">
      <div class="panel"><h2>Exploration graph</h2>
        <div class="legend"><span style="--c:#94a3b8">open</span><span style="--c:#3b82f6">assigned</span><span style="--c:#16a34a">done ok</span><span style="--c:#dc2626">done, failed</span><span class="ring">ringed: a worker is on it</span></div>
        <div class="graph" id="rn-graph" style="min-height:560px"></div><div class="sub" id="rn-cap"></div><div id="rn-end"></div></div>
      <div><div class="panel"><h2>Frontier: best groups</h2><div id="rn-frontier" class="empty">–</div></div>
        <div class="panel"><h2>Workers' nodes</h2><div class="scroll" style="max-height:300px"><table><thead><tr><th>Worker</th><th>Node</th><th>Last tick</th></tr></thead><tbody id="rn-wtable"></tbody></table></div></div></div>
    </div>`;
  const q = (id) => document.getElementById(id);
  q("rn-stop").addEventListener("click", () => api(`/api/runs/${rid}/stop`, { method: "POST" }).catch((e) => toast(e.message)));
  q("rn-speed").addEventListener("change", (e) => api(`/api/runs/${rid}/speed`, { method: "POST", body: { ticks_per_second: +e.target.value } }).catch((er) => toast(er.message)));
  let pending = false, dirty = true, finished = false;
  const fetchGraph = async () => {
    if (pending || !dirty) return;
    pending = true; dirty = false;
    try {
      const d = await api(`/api/runs/${rid}/graph?limit=1500&workers=64`);
      const busy = new Set(d.workers.filter((w) => w.node >= 0).map((w) => w.node));
      G.drawTree(q("rn-graph"), d.nodes, busy, 560);
      q("rn-cap").textContent = d.total_nodes > d.nodes.length ? `showing the first ${d.nodes.length} of ${d.total_nodes.toLocaleString()} nodes` : "";
      const byId = new Map(d.nodes.map((n) => [n.id, n]));
      q("rn-wtable").innerHTML = d.workers.map((w) => { const n = byId.get(w.node); return `<tr><td>w${w.worker}</td><td class="mono">${w.node < 0 ? "–" : n ? esc(`${n.action}(${n.target || ""})`) : "#" + w.node}</td><td>${esc(w.result)}</td></tr>`; }).join("")
        + (d.total_workers > d.workers.length ? `<tr><td colspan="3" class="sub">and ${d.total_workers - d.workers.length} more workers</td></tr>` : "");
    } catch (e) { q("rn-end").innerHTML = errorBox(e.message); }
    pending = false;
  };
  const tick = (t) => {
    q("rn-tick").textContent = t.tick;
    q("rn-nodes").textContent = t.nodes.toLocaleString();
    q("rn-new").textContent = `+${t.new_nodes} this tick · ${t.open} open, ${t.assigned} assigned`;
    q("rn-actions").textContent = t.actions.toLocaleString();
    q("rn-failed").textContent = `${t.failed_actions} failed`;
    q("rn-workers").innerHTML = Object.entries(t.workers).filter(([, v]) => v).map(([k, v]) => `<span class="chip">${esc(k)} ${v}</span>`).join("") || "–";
    const top = Math.max(1e-9, ...t.frontier.filter((f) => f.score !== null).map((f) => Math.abs(f.score)));
    q("rn-frontier").className = t.frontier.length ? "" : "empty";
    q("rn-frontier").innerHTML = t.frontier.length ? t.frontier.map((f) => `
      <div style="margin-bottom:8px"><div style="display:flex;justify-content:space-between"><span class="mono">${esc(f.action)}(${esc(f.target || "")})</span><span class="mono">${f.score === null ? "untried" : num(f.score, 3)}</span></div>
      <div class="bar"><span style="width:${f.score === null ? 100 : 100 * Math.abs(f.score) / top}%;${f.score === null ? "background:#22d3ee" : ""}"></span></div><div class="sub" style="font-size:11px">${f.open} open</div></div>`).join("") : "frontier empty";
    if (llm && t.llm) llm.stats(t.llm);
    dirty = true;
  };
  const llm = run.llm_managed ? decisionsView(q("rn-decisions"), q("rn-llm")) : null;
  if (run.last) tick(run.last);
  const timer = setInterval(fetchGraph, 350);
  cleanup.push(() => clearInterval(timer));
  fetchGraph();
  stream(`/api/runs/${rid}/events`, {
    tick,
    decisions: (e) => { if (llm) llm.add(e); },
    state: (e) => { q("rn-state").textContent = e.state; if (llm) llm.state(e.state); },
    done: (e) => {
      finished = true; dirty = true; fetchGraph();
      if (llm) { if (e.llm) llm.stats(e.llm); llm.state("done"); }
      q("rn-state").textContent = e.verdict; q("rn-state").className = "chip " + (e.success ? "ok" : "bad");
      q("rn-stop").hidden = true;
      q("rn-end").innerHTML = `<p class="run-done"><b>${e.success ? "Success" : "No success"}</b>: ${esc(e.verdict)} after ${e.ticks} ticks, ${e.actions} actions (${e.failed_actions} failed).</p>`;
    },
    error: (e) => {
      q("rn-state").textContent = "failed"; q("rn-state").className = "chip bad"; q("rn-stop").hidden = true;
      // an LLM run's error is nearly always its backend's: shown once, where its decisions would be
      if (llm) llm.fail(e.error); else q("rn-end").innerHTML = errorBox(e.error);
    },
  });
  if (run.result) { q("rn-state").textContent = run.result.verdict; }
  void finished;
}

// ------------------------------------------------------------------ a live run's LLM decisions
const DECISION_ROWS = 200;                 // rows kept in the page: the oldest go, the stream does not
const FALLBACK_CHIP = { unsure: "warn", taken: "warn", failed: "bad" };

function decisionsPanel() {
  return `<div class="panel" id="rn-llmpanel"><div class="head" style="margin-bottom:8px"><h2 style="margin:0">Decisions <span class="sub" style="font-weight:400;font-size:12px">newest first &middot; click one for its prompt and candidates</span></h2>
      <div class="llm-strip" id="rn-llm"></div></div>
    <div class="decisions" id="rn-decisions"><div class="loading">waiting for the model&hellip;</div></div></div>`;
}

const stepText = (c) => (c ? [c.action, c.target, c.arg].filter((x) => x !== null && x !== undefined && x !== "").join(" ") : "");

function decisionHead(d) {
  const chosen = d.choice === null || d.choice === undefined ? null : d.candidates[d.choice];
  const conf = d.confidence === null || d.confidence === undefined ? null : d.confidence;
  const chip = d.applied ? `<span class="chip ok">applied</span>`
    : d.fallback ? `<span class="chip ${FALLBACK_CHIP[d.fallback] || "warn"}" title="${esc(d.error || "the bandit decided instead")}">${esc(d.fallback)}</span>`
    : `<span class="chip">asking&hellip;</span>`;
  const did = d.executed && (!chosen || stepText(d.executed) !== stepText(chosen))
    ? `<div class="sub" style="margin:0;font-size:11.5px">then did <span class="mono">${esc(stepText(d.executed))}</span>${d.outcome ? " &rarr; " + esc(d.outcome) : ""}</div>`
    : d.outcome ? `<div class="sub" style="margin:0;font-size:11.5px">&rarr; ${esc(d.outcome)}</div>` : "";
  return `<span class="num">t${d.tick}</span><span>w${d.worker}</span>
    <div class="pick">${chosen ? `<span class="mono">${esc(stepText(chosen))}</span>` : `<span class="sub">${d.fallback === "failed" ? esc(d.error || "no answer") : `${d.candidates.length} candidates`}</span>`}${did}</div>
    <div class="conf" title="confidence ${conf === null ? "–" : num(conf, 3)}"><div class="bar"><span style="width:${conf === null ? 0 : 100 * conf}%"></span></div><span class="num">${conf === null ? "–" : pct(conf, 0)}</span></div>
    <span class="state">${chip}</span>`;
}

function decisionBody(d) {
  return `<div class="dec-body">
    <div>${d.prompt.map((m) => `<h3>${esc(m.role)}</h3><pre class="prompt ${m.role === "system" ? "shared" : ""}">${esc(m.content)}</pre>`).join("")}
      ${d.answer !== null && d.answer !== undefined ? `<h3>Model's answer (${esc(d.answer_format)})</h3><pre class="prompt">${esc(d.answer)}</pre>` : ""}
      ${d.error ? `<div class="error">${esc(d.error)}</div>` : ""}</div>
    <div><h3>Candidates</h3><ol class="cands">${d.candidates.map((c, i) => `<li class="${i === d.choice ? "chosen" : ""}"><span class="mono">${esc(stepText(c))}</span>${i === d.choice ? ' <span class="chip accent">chosen</span>' : ""}${d.executed && stepText(d.executed) === stepText(c) ? ' <span class="chip">executed</span>' : ""}</li>`).join("")}</ol></div></div>`;
}

/** The Decisions panel of a live run: rows merged by id, newest first, at most DECISION_ROWS in the DOM. */
function decisionsView(box, strip) {
  const rows = new Map();                  // id -> {d, el}
  let notShown = 0;
  const render = (r) => {
    r.el.querySelector(".dec-head").innerHTML = decisionHead(r.d);
    const body = r.el.querySelector(".dec-body");
    if (r.el.classList.contains("open")) { if (body) body.remove(); r.el.insertAdjacentHTML("beforeend", decisionBody(r.d)); }
  };
  box.addEventListener("click", (ev) => {
    const head = ev.target.closest(".dec-head");
    if (!head) return;
    const el = head.parentElement, r = rows.get(+el.dataset.id);
    if (!r) return;
    el.classList.toggle("open");
    const body = el.querySelector(".dec-body");
    if (body) body.remove();
    if (el.classList.contains("open")) el.insertAdjacentHTML("beforeend", decisionBody(r.d));
  });
  return {
    add(e) {
      notShown = e.not_shown || 0;
      const fresh = document.createDocumentFragment();
      for (const row of e.decisions) {
        const r = rows.get(row.id);
        if (r) { Object.assign(r.d, row); render(r); continue; }
        if (!row.prompt) continue;         // its first row left the page already
        const el = h(`<div class="dec" data-id="${row.id}"><div class="dec-head"></div></div>`);
        const nr = { d: { ...row }, el };
        rows.set(row.id, nr); render(nr);
        fresh.insertBefore(el, fresh.firstChild);
      }
      if (rows.size && box.querySelector(".loading, .empty")) box.innerHTML = "";
      box.insertBefore(fresh, box.firstChild);
      for (const id of rows.keys()) {      // a Map keeps insertion order: the first are the oldest
        if (rows.size <= DECISION_ROWS) break;
        rows.get(id).el.remove(); rows.delete(id);
      }
    },
    stats(s) {
      const cell = (k, v, title) => `<span title="${esc(title || "")}"><b>${v}</b> ${k}</span>`;
      strip.innerHTML = cell("calls", s.calls.toLocaleString()) + cell("in flight", s.in_flight)
        + cell("applied", s.applied.toLocaleString()) + cell("fell back", s.fallbacks.toLocaleString(), `${s.unsure} unsure, ${s.taken} taken, ${s.failed} failed`)
        + cell("failed", s.failed.toLocaleString()) + cell("decisions/s", s.decisions_per_sec === null ? "–" : num(s.decisions_per_sec, 2))
        + cell("latency p50", s.latency_ms_p50 === null ? "–" : s.latency_ms_p50 < 1000 ? num(s.latency_ms_p50, 0) + " ms" : num(s.latency_ms_p50 / 1000, 1) + " s")
        + (notShown ? cell("not shown", notShown.toLocaleString(), "more new decisions in one tick than the stream carries") : "");
    },
    state(st) {
      const wait = box.querySelector(".loading");
      if (!wait) return;
      if (st === "loading model") wait.innerHTML = "loading the model&hellip;";
      else if (st === "running") wait.innerHTML = "waiting for the first decision&hellip;";
      else if (st === "done" && !rows.size) { wait.className = "empty"; wait.textContent = "no decision was asked in this run"; }
    },
    fail(msg) { box.insertAdjacentHTML("beforebegin", errorBox(msg)); const wait = box.querySelector(".loading"); if (wait) wait.remove(); if (!rows.size) box.hidden = true; },
  };
}

// ------------------------------------------------------------------ reports
async function pageReports() {
  $main.innerHTML = `<div class="head"><div><h1>Reports</h1><p class="sub" id="rfolder"></p></div>
    <button id="cmp" disabled>Compare selected</button></div><div class="panel" id="rlist"><div class="loading">reading reports&hellip;</div></div>`;
  const data = await api("/api/reports");
  document.getElementById("rfolder").innerHTML = `The JSON reports in <span class="mono">${esc(data.folder)}</span> (<span class="mono">swarm eval -o</span> and evals started here). Tick two or more to compare them.`;
  const box = document.getElementById("rlist");
  if (!data.reports.length) { box.innerHTML = `<div class="empty">No reports in this folder yet. Start an eval from a scenario's page, or run <span class="mono">swarm eval SCENARIO -o ${esc(data.folder)}/NAME.json</span>.</div>`; return; }
  box.innerHTML = `<table><thead><tr><th></th><th>Report</th><th>Scenario</th><th class="num">Runs</th><th>Success</th><th style="width:22%">95% interval</th><th class="num">Actions (mean)</th><th>Modified</th></tr></thead><tbody>
    ${data.reports.map((r) => r.error ? `<tr class="bad-report"><td></td><td class="mono"><a href="#/report/${encodeURIComponent(r.ref)}">${esc(r.file)}</a></td><td colspan="6"><span class="chip bad">not readable</span> <span class="sub">${esc(r.error)}</span></td></tr>` : `
      <tr><td><input type="checkbox" class="pick" value="${esc(r.ref)}" style="min-width:0"></td>
      <td class="mono"><a href="#/report/${encodeURIComponent(r.ref)}">${esc(r.ref)}</a></td>
      <td>${esc(r.scenario)} ${r.variant ? `<span class="chip">${esc(r.variant)}</span>` : ""}</td><td class="num">${(r.runs || 0).toLocaleString()}</td>
      <td><b>${pct(r.success_rate)}</b></td><td>${r.ci95 ? ciBar(r.ci95[0], r.ci95[1], r.success_rate) : ""}</td><td class="num">${num(r.actions_mean)}</td><td class="sub">${r.modified ? ago(r.modified) : ""}</td></tr>`).join("")}</tbody></table>`;
  const btn = document.getElementById("cmp");
  const picked = () => [...box.querySelectorAll(".pick:checked")].map((c) => c.value);
  box.addEventListener("change", () => { btn.disabled = picked().length < 2; });
  btn.addEventListener("click", () => { location.hash = "#/compare/" + picked().map(encodeURIComponent).join(","); });
}

function histSvg(hg, label) {
  if (!hg.counts.length) return `<div class="empty">no runs in this report</div>`;
  const W = 420, H = 150, max = Math.max(...hg.counts), bw = (W - 30) / hg.counts.length;
  const bars = hg.counts.map((c, i) => `<rect x="${24 + i * bw + 1}" y="${H - 18 - (H - 30) * c / max}" width="${Math.max(1, bw - 2)}" height="${(H - 30) * c / max}"><title>${label} ${num(hg.edges[i], 0)}–${num(hg.edges[i + 1], 0)}: ${c} runs</title></rect>`).join("");
  return `<svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none">${bars}
    <text x="24" y="${H - 4}">${num(hg.edges[0], 0)}</text><text x="${W - 6}" y="${H - 4}" text-anchor="end">${num(hg.edges[hg.edges.length - 1], 0)}</text>
    <text x="2" y="12">${max}</text></svg>`;
}

function statRow(name, st) {
  if (!st || !st.n) return `<tr><td>${name}</td><td colspan="4" class="sub">no runs</td></tr>`;
  const ci = (c) => (c ? `<span class="sub">[${num(c[0])}, ${num(c[1])}]</span>` : "");
  return `<tr><td>${name}</td><td class="num">${num(st.mean)} ${ci(st.mean_ci95)}</td><td class="num">${num(st.p50, 0)} ${ci(st.p50_ci95)}</td><td class="num">${num(st.p95, 0)} ${ci(st.p95_ci95)}</td><td class="num">${num(st.min, 0)}–${num(st.max, 0)}</td></tr>`;
}

async function pageReport(ref) {
  $main.innerHTML = `<div class="loading">reading ${esc(ref)}&hellip;</div>`;
  let r;
  try { r = await api(`/api/report?ref=${encodeURIComponent(ref)}`); }
  catch (e) { $main.innerHTML = `<div class="head"><div><h1>Report</h1><p class="sub mono">${esc(ref)}</p></div><a href="#/reports">all reports</a></div>${errorBox(e.message)}`; return; }
  const s = r.summary, sc = r.scenario || {};
  $main.innerHTML = `
    <div class="head"><div><h1>${esc(sc.name)} ${sc.variant ? `<span class="chip">${esc(sc.variant)}</span>` : ""}</h1>
      <p class="sub mono">${esc(ref)} &middot; ${esc(sc.file)} &middot; swarm-engine ${esc((r.engine || {}).version)}</p></div><a href="#/reports">all reports</a></div>
    <div class="cards">
      <div class="card"><div class="k">Success rate</div><div class="v">${pct(s.success_rate)}</div><div class="s">${s.successes} of ${s.runs} runs${s.stopped ? " (stopped)" : ""}</div></div>
      <div class="card"><div class="k">95% interval (Wilson)</div><div class="v" style="font-size:17px">${pct(s.success_rate_ci95[0])} – ${pct(s.success_rate_ci95[1])}</div>${ciBar(s.success_rate_ci95[0], s.success_rate_ci95[1], s.success_rate)}</div>
      <div class="card"><div class="k">pass@k</div><div class="s mono">${Object.entries(s.pass_at_k || {}).map(([k, v]) => `@${k} ${pct(v)}`).join("  ")}</div><div class="k" style="margin-top:6px">pass^k</div><div class="s mono">${Object.entries(s.pass_hat_k || {}).map(([k, v]) => `^${k} ${pct(v)}`).join("  ")}</div></div>
      <div class="card"><div class="k">Actions / s</div><div class="v">${si(s.actions_per_sec)}</div><div class="s">${si(s.total_actions)} actions in ${num(s.wall_seconds, 3)} s</div></div>
    </div>
    <div class="panel"><h2>Per run</h2><table><thead><tr><th></th><th class="num">mean [95%]</th><th class="num">p50 [95%]</th><th class="num">p95 [95%]</th><th class="num">range</th></tr></thead><tbody>
      ${statRow("Ticks", s.ticks)}${statRow("Actions", s.actions)}${statRow("Actions to success", s.actions_to_success)}</tbody></table></div>
    <div class="cols"><div class="panel hist"><h2>Ticks per run</h2>${histSvg(r.histograms.ticks, "ticks")}</div>
      <div class="panel hist"><h2>Actions per run</h2>${histSvg(r.histograms.actions, "actions")}</div>
      <div class="panel"><h2>How runs ended</h2>${Object.entries(r.reasons).sort((a, b) => b[1] - a[1]).map(([k, v]) => `<div style="margin-bottom:6px"><div style="display:flex;justify-content:space-between"><span>${esc(k)}</span><span class="mono">${v}</span></div><div class="bar"><span style="width:${100 * v / Math.max(1, r.run_count)}%;background:${k === "success" ? "var(--ok)" : "var(--bad)"}"></span></div></div>`).join("") || '<div class="empty">no runs recorded</div>'}
        <h3>Actions by kind</h3>${Object.entries(s.actions_by_kind || {}).map(([k, v]) => `<span class="chip">${esc(k)} ${si(v)}</span>`).join("")}</div></div>
    <div class="panel"><h2>Runs</h2>
      ${r.has_runs ? `<form class="toolbar" id="rf">
        <label>Show<select name="status"><option value="all">all runs</option><option value="failed">failed runs</option><option value="success">successful runs</option></select></label>
        <label>Verdict<select name="reason"><option value="">any</option>${Object.keys(r.reasons).map((k) => `<option>${esc(k)}</option>`).join("")}</select></label>
        <label>Seed<input name="seed" type="text" inputmode="numeric" placeholder="e.g. ${r.seed_info ? r.seed_info.base_seed : 42}"></label>
        <span class="sub" id="rcount"></span></form><div class="scroll" style="margin-top:10px"><table id="rtable"><thead><tr><th class="num">#</th><th class="num">Seed</th><th>Result</th><th>Reason</th><th class="num">Ticks</th><th class="num">Actions</th><th class="num">Failed</th><th>Actions by kind</th>${r.trace ? "<th>Events</th>" : ""}</tr></thead><tbody></tbody></table></div>
        <div class="pager"><button class="ghost" id="rprev">&larr;</button><span id="rpage"></span><button class="ghost" id="rnext">&rarr;</button></div>`
        : `<div class="empty">This report has no per-run rows.</div>`}</div>
    <div class="panel"><h2>Configuration</h2><div class="kv">${Object.entries(r.config || {}).map(([k, v]) => `<div>${esc(k)}</div><div class="mono">${esc(v)}</div>`).join("")}
      <div>seeds</div><div class="mono">${esc(JSON.stringify((r.seed_info || {}).run_seeds))}</div><div>sha256</div><div class="mono">${esc(sc.sha256)}</div>${r.trace ? `<div>trace</div><div class="mono">${esc(r.trace)}</div>` : ""}</div></div>`;
  if (!r.has_runs) return;
  const form = document.getElementById("rf");
  let offset = 0, asked = 0; const limit = 100;
  const load = async () => {
    const mine = ++asked;                                 // typing a seed asks per key: only the last answer counts
    const f = new FormData(form);
    const qs = new URLSearchParams({ ref, status: f.get("status"), reason: f.get("reason"), seed: f.get("seed").trim(), offset, limit });
    const tb = document.querySelector("#rtable tbody");
    try {
      const d = await api(`/api/report/runs?${qs}`);
      if (mine !== asked) return;
      tb.innerHTML = d.runs.map((x) => `<tr data-seed="${x.seed}"><td class="num">${x.index}</td><td class="num mono">${x.seed}</td><td>${x.success ? '<span class="chip ok">success</span>' : '<span class="chip bad">failed</span>'}</td><td>${esc(x.reason)}</td><td class="num">${x.ticks}</td><td class="num">${x.actions}</td><td class="num">${x.failed_actions}</td><td class="mono" style="font-size:11px">${esc(Object.entries(x.actions_by_kind || {}).map(([k, v]) => k + " " + v).join(", "))}</td>${r.trace ? `<td><a class="trace-link" href="#/report/${encodeURIComponent(ref)}/run/${x.index}">trace</a></td>` : ""}</tr>`).join("") || `<tr><td colspan="9" class="empty">no run matches</td></tr>`;
      document.getElementById("rcount").textContent = `${d.matched.toLocaleString()} of ${d.total.toLocaleString()} runs`;
      document.getElementById("rpage").textContent = d.matched ? `${offset + 1}–${Math.min(offset + limit, d.matched)}` : "";
      document.getElementById("rprev").disabled = offset === 0;
      document.getElementById("rnext").disabled = offset + limit >= d.matched;
    } catch (e) { if (mine !== asked) return; tb.innerHTML = `<tr><td colspan="8">${errorBox(e.message)}</td></tr>`; document.getElementById("rcount").textContent = ""; }
  };
  form.addEventListener("input", () => { offset = 0; load(); });
  form.addEventListener("submit", (e) => e.preventDefault());
  document.getElementById("rprev").addEventListener("click", () => { offset = Math.max(0, offset - limit); load(); });
  document.getElementById("rnext").addEventListener("click", () => { offset += limit; load(); });
  load();
}

function diffCell(d, fmt) {
  if (!d) return `<td class="sub">–</td>`;
  return `<td class="num">${fmt(d.difference)} <span class="sub">[${fmt(d.ci95[0])}, ${fmt(d.ci95[1])}]</span><br>
    <span class="sig ${d.significant ? "yes" : "no"}">${d.significant ? "significant" : "not significant"}</span> <span class="sub">p ${d.p_value === 0 ? "< 1e-16" : "= " + (d.p_value < 1e-4 ? d.p_value.toExponential(1) : d.p_value.toFixed(4))}</span></td>`;
}

async function pageCompare(refs) {
  const list = refs.split(",").map(decodeURIComponent);
  const qs = list.map((r) => "ref=" + encodeURIComponent(r)).join("&");
  $main.innerHTML = `<div class="head"><div><h1>Compare reports</h1><p class="sub">Each against the first (the baseline). Success rates: Newcombe's interval for the difference, two-proportion z-test; means: Welch.</p></div><a href="#/reports">all reports</a></div><div id="cmpbody"></div>`;
  let d;
  try { d = await api(`/api/compare?${qs}`); } catch (e) { document.getElementById("cmpbody").innerHTML = errorBox(e.message); return; }
  const sgn = (f) => (x) => (x > 0 ? "+" : "") + f(x);
  const dom = ciDomain(d.reports.map((r) => r.ci95));
  document.getElementById("cmpbody").innerHTML = `
    <div class="panel"><h2>Success rate</h2>
      ${d.reports.map((r, i) => `<div style="display:grid;grid-template-columns:minmax(200px,320px) 90px 1fr;gap:12px;align-items:center;margin-bottom:10px">
        <div><b>${esc(r.scenario)}</b> ${r.variant ? `<span class="chip">${esc(r.variant)}</span>` : ""}${i === 0 ? ' <span class="chip accent">baseline</span>' : ""}<div class="sub mono" style="font-size:11px">${esc(r.ref)}</div></div>
        <div style="font-size:18px;font-weight:650">${pct(r.success_rate)}</div><div>${ciBar(r.ci95[0], r.ci95[1], r.success_rate, dom)}</div></div>`).join("")}
      <div style="display:grid;grid-template-columns:minmax(200px,320px) 90px 1fr;gap:12px"><div></div><div></div><div class="ci-scale"><span>${pct(dom[0])}</span><span>${pct((dom[0] + dom[1]) / 2)}</span><span>${pct(dom[1])}</span></div></div></div>
    <div class="panel"><table id="cmptable"><thead><tr><th>Report</th><th class="num">Runs</th><th class="num">Success</th><th class="num">Actions mean</th><th class="num">Ticks mean</th><th class="num">Δ success vs baseline</th><th class="num">Δ actions</th><th class="num">Δ ticks</th></tr></thead><tbody>
      ${d.reports.map((r) => `<tr><td><b>${esc(r.scenario)}</b>${r.variant ? ` <span class="chip">${esc(r.variant)}</span>` : ""}<div class="sub mono" style="font-size:11px">${esc(r.ref)}</div></td><td class="num">${(r.runs || 0).toLocaleString()}</td><td class="num">${pct(r.success_rate)}<br><span class="sub">[${pct(r.ci95[0])}, ${pct(r.ci95[1])}]</span></td>
        <td class="num">${num((r.actions || {}).mean)}</td><td class="num">${num((r.ticks || {}).mean)}</td>
        ${r.vs_baseline ? diffCell(r.vs_baseline.success_rate, sgn((x) => pct(x))) + diffCell(r.vs_baseline.actions, sgn((x) => num(x, 2))) + diffCell(r.vs_baseline.ticks, sgn((x) => num(x, 2))) : `<td colspan="3" class="sub">baseline</td>`}</tr>`).join("")}</tbody></table></div>`;
}

// ------------------------------------------------------------------ learning
async function pageLearning(key) {
  if (key) return pageLearningKey(key);
  const d = await api("/api/learning");
  $main.innerHTML = `<div class="head"><div><h1>Learning</h1><p class="sub">The learning store at <span class="mono">${esc(d.root)}</span>: one key per scenario family.</p></div></div>
    ${d.problems.map((p) => `<div class="note">${esc(p)}</div>`).join("")}
    <div class="panel">${d.keys.length ? `<table><thead><tr><th>Key</th><th class="num">Episodes</th><th class="num">Successful</th><th class="num">Sessions</th><th>Offline model</th><th>Daemon</th></tr></thead><tbody>
      ${d.keys.map((k) => `<tr><td><a href="#/learning/${encodeURIComponent(k.key)}"><b>${esc(k.key)}</b></a></td><td class="num">${k.episodes.toLocaleString()}</td><td class="num">${k.success_episodes.toLocaleString()}</td><td class="num">${k.sessions}</td><td>${k.model ? `<span class="chip accent">v${k.model_version}</span> <span class="sub">${esc(k.model)}</span>` : '<span class="sub">none</span>'}</td><td><span class="chip">${esc(k.daemon)}</span></td></tr>`).join("")}</tbody></table>`
      : `<div class="empty">Nothing learned yet. Record sessions with <span class="mono">swarm eval SCENARIO --learning</span>, then <span class="mono">swarm learn once SCENARIO</span>.</div>`}</div>`;
}

async function pageLearningKey(key) {
  let d;
  try { d = await api(`/api/learning/${encodeURIComponent(key)}`); }
  catch (e) { $main.innerHTML = `<div class="head"><div><h1>Learning key</h1><p class="sub mono">${esc(key)}</p></div><a href="#/learning">all keys</a></div>${errorBox(e.message)}`; return; }
  const m = d.model_in_use;
  const daemon = d.daemon || {};
  $main.innerHTML = `<div class="head"><div><h1>${esc(d.key)}</h1><p class="sub mono">${esc(d.dir)}</p></div><a href="#/learning">all keys</a></div>
    ${d.problems.map((p) => `<div class="note">${esc(p)}</div>`).join("")}
    <div class="cards"><div class="card"><div class="k">Episodes</div><div class="v">${d.episodes.toLocaleString()}</div><div class="s">${d.success_episodes.toLocaleString()} successful</div></div>
      <div class="card"><div class="k">Sessions</div><div class="v">${d.session_count}</div></div>
      <div class="card"><div class="k">Model in use</div><div class="v">${m ? "v" + m.version : "none"}</div><div class="s">${m ? esc(m.summary) : "the scenario's own settings"}</div></div>
      <div class="card"><div class="k">LoRA adapter</div><div class="v">${d.lora_active ? "v" + esc(d.lora_active.version) : "none"}</div><div class="s">${d.lora_versions.length} versions kept</div></div>
      <div class="card"><div class="k">Daemon</div><div class="v" style="font-size:17px">${esc(daemon.state)}</div><div class="s">${daemon.pid ? `pid ${daemon.pid}, ${daemon.running ? "running" : "not running"}` : ""}</div></div></div>
    <div class="panel"><div class="head" style="margin-bottom:8px"><h2>Offline model versions</h2>${m ? `<button class="danger" id="rollback">Roll back to the previous version</button>` : ""}</div><div id="rbout"></div>
      ${d.models.length ? `<table><thead><tr><th>Version</th><th>Created</th><th>Parameters</th><th>Validation (held out)</th></tr></thead><tbody>${d.models.map((v) => {
        const ho = (v.validation || {}).heldout;
        return `<tr><td><b>v${v.version}</b> ${v.in_use ? '<span class="chip ok">in use</span>' : ""}</td><td class="sub">${esc(v.created)}</td><td class="mono" style="font-size:11.5px">${esc(Object.entries(v.parameters).map(([k, x]) => `${k}=${x}`).join(" "))}</td>
          <td>${ho ? `success ${pct(ho.in_use.success_rate)} → <b>${pct(ho.new.success_rate)}</b>; actions to success ${num(ho.in_use.mean_actions_to_success)} → <b>${num(ho.new.mean_actions_to_success)}</b>` : '<span class="sub">–</span>'}</td></tr>`;
      }).join("")}</tbody></table>` : `<div class="empty">No model learned yet: <span class="mono">swarm learn once ${esc(d.key)}</span>.</div>`}</div>
    ${m ? `<div class="panel"><h2>Recommended paths (model in use)</h2><table><thead><tr><th>Path</th><th class="num">Success</th><th class="num">Support</th></tr></thead><tbody>${m.recommended_paths.map((p) => `<tr><td class="mono">${esc(p.path.join(" → "))}</td><td class="num">${pct(p.success_rate)}</td><td class="num">${p.support}</td></tr>`).join("") || '<tr><td colspan="3" class="sub">none</td></tr>'}</tbody></table>
      ${m.changes.length ? `<h3>What changed</h3><ul>${m.changes.map((c) => `<li>${esc(c)}</li>`).join("")}</ul>` : ""}</div>` : ""}
    <div class="panel"><h2>Sessions (newest first)</h2>${d.sessions.length ? `<div class="scroll"><table><thead><tr><th>Session</th><th class="num">Episodes</th><th class="num">Successful</th><th>Scenario</th></tr></thead><tbody>${d.sessions.map((s) => `<tr><td class="mono">${esc(s.name)}</td><td class="num">${s.episodes}</td><td class="num">${s.success_episodes}</td><td class="mono" style="font-size:11.5px">${esc(s.scenario_path || "")}${s.variant ? " [" + esc(s.variant) + "]" : ""}</td></tr>`).join("")}</tbody></table></div>` : '<div class="empty">no sessions</div>'}</div>`;
  const rb = document.getElementById("rollback");
  if (rb) rb.addEventListener("click", async () => {
    if (!window.confirm(`Roll ${d.key} back from model v${m.version} to the version before it? The next eval will use that one.`)) return;
    try { const out = await api(`/api/learning/${encodeURIComponent(key)}/rollback`, { method: "POST", body: { confirm: true } }); toast(out.message); pageLearningKey(key); }
    catch (e) { document.getElementById("rbout").innerHTML = errorBox(e.message); }
  });
}

// ------------------------------------------------------------------ servers
async function pageServers() {
  $main.innerHTML = `<div class="head"><div><h1>Servers</h1><p class="sub">Local llama-servers started with <span class="mono">swarm llama start</span>.</p></div><button class="ghost" id="srefresh">Refresh</button></div><div id="sbody"><div class="loading">asking the servers&hellip;</div></div>`;
  const render = async () => {
    const body = document.getElementById("sbody");
    let d;
    try { d = await api("/api/servers"); } catch (e) { body.innerHTML = errorBox(e.message); return; }
    body.innerHTML = d.servers.map((s) => `<div class="panel server" data-name="${esc(s.name)}">
      <div class="head" style="margin-bottom:8px"><h2>${esc(s.name)} <span class="chip ${s.running ? (s.health === "ok" ? "ok" : "warn") : ""}">${s.running ? esc(s.health || "running") : s.stale ? "not running (stale pid file)" : "not running"}</span></h2></div>
      <div class="kv">${s.url ? `<div>URL</div><div class="mono">${esc(s.url)}</div>` : ""}${s.pid ? `<div>pid</div><div class="mono">${s.pid}</div>` : ""}${s.model ? `<div>Model</div><div class="mono">${esc(s.model)}</div>` : ""}
        ${s.slots ? `<div>Slots</div><div>${s.slots.length} (${s.busy_slots} busy, n_ctx ${esc(s.slots[0] ? s.slots[0].n_ctx : "")} each)</div>` : ""}
        ${(s.lora || []).map((a) => `<div>LoRA ${esc(a.id)}</div><div class="mono">${esc(a.path)} scale ${esc(a.scale)}</div>`).join("")}
        <div>Log</div><div class="mono">${esc(s.log)}</div></div>
      ${s.running ? "" : `<p class="sub">Start one with <span class="mono">swarm llama start${s.name === "default" ? "" : " --name " + esc(s.name)}</span>.</p>`}
      <h3>Log tail</h3><div class="log" id="log-${esc(s.name)}">&hellip;</div></div>`).join("");
    for (const s of d.servers) {
      api(`/api/servers/${encodeURIComponent(s.name)}/log?lines=80`).then((l) => {
        const el = document.getElementById("log-" + s.name);
        if (el) { el.textContent = l.missing ? "(no log yet)" : l.lines.join("\n") || "(empty)"; el.scrollTop = el.scrollHeight; }
      }).catch((e) => { const el = document.getElementById("log-" + s.name); if (el) el.textContent = e.message; });
    }
  };
  document.getElementById("srefresh").addEventListener("click", render);
  await render();
}

// ------------------------------------------------------------------ start
async function activity() {
  try {
    const [ev, rn] = await Promise.all([api("/api/evals"), api("/api/runs")]);
    const busy = ev.evals.filter((j) => j.state === "running" || j.state === "queued").length + rn.runs.filter((r) => r.state === "running" || r.state === "loading model").length;
    document.getElementById("activity").innerHTML = busy ? `<span class="pulse"></span>${busy} running` : "idle";
  } catch (e) { document.getElementById("activity").textContent = "server unreachable"; }
}
(async () => {
  try { INFO = await api("/api/info"); document.getElementById("version").textContent = "v" + INFO.version; } catch (e) { /* the page says so */ }
  route();
  activity(); setInterval(activity, 2000);
})();
