/* swarm-engine dashboard: one run's trace (#/report/NAME/run/I), the events
   `swarm eval --trace` wrote for it, a page at a time. Loaded before app.js,
   whose helpers (api, esc, errorBox, num) it calls; app.js routes here. */
"use strict";

const TRACE_PAGE = 200;                          // events a page (the API allows 5000)
const OUTCOME_CHIP = { ok: "ok", fail: "bad", error: "warn" };

function traceRow(e, i) {
  const src = e.decided_by || e.source || "";
  return `<tr><td class="num sub">${i + 1}</td><td class="num">${esc(e.tick)}</td><td class="num">w${esc(e.worker)}</td>
    <td><b>${esc(e.action)}</b></td><td class="mono nowrap">${esc(e.target)}</td><td class="mono nowrap">${esc(e.arg)}</td>
    <td><span class="chip ${OUTCOME_CHIP[e.outcome] || ""}">${esc(e.outcome)}</span></td>
    <td>${src ? `<span class="chip ${src === "selector" ? "" : "accent"}">${esc(src)}</span>` : ""}</td>
    <td class="obs">${e.observation === null || e.observation === undefined ? '<span class="sub">–</span>' : esc(e.observation)}</td></tr>`;
}

async function pageTrace(ref, run) {
  const back = `#/report/${encodeURIComponent(ref)}`;
  $main.innerHTML = `<div class="head"><div><h1>Run ${esc(run)} <span class="sub" id="tseed"></span></h1>
      <p class="sub mono" id="tsub">${esc(ref)}</p></div><a href="${back}">the report</a></div>
    <div class="cards" id="tcards"></div>
    <div class="panel"><div class="head" style="margin-bottom:8px;align-items:center"><h2 style="margin:0">Events</h2><span class="sub" id="tcount"></span></div>
      <div id="tbody"><div class="loading">reading the trace&hellip;</div></div>
      <div class="pager" id="tpager" hidden><button class="ghost" id="tprev">&larr;</button><span id="tpage"></span><button class="ghost" id="tnext">&rarr;</button></div></div>`;
  let offset = 0;
  const body = document.getElementById("tbody");
  const load = async () => {
    let d;
    try { d = await api(`/api/reports/${encodeURIComponent(ref)}/trace?run=${encodeURIComponent(run)}&offset=${offset}&limit=${TRACE_PAGE}`); }
    catch (e) { body.innerHTML = errorBox(e.message); document.getElementById("tpager").hidden = true; return null; }
    document.getElementById("tseed").textContent = `seed ${d.seed}`;
    document.getElementById("tsub").textContent = `${ref} · ${d.trace}`;
    document.getElementById("tcount").textContent = `${d.total.toLocaleString()} events`;
    body.innerHTML = d.total ? `<div class="scroll tall"><table class="trace"><thead><tr><th class="num">#</th><th class="num">Tick</th><th class="num">Worker</th><th>Action</th><th>Target</th><th>Arg</th><th>Outcome</th><th>Source</th><th>Observation</th></tr></thead>
      <tbody>${d.events.map((e, i) => traceRow(e, offset + i)).join("")}</tbody></table></div>`
      : `<div class="empty">The trace has no events for this run (seed ${d.seed}).</div>`;
    document.getElementById("tpager").hidden = d.total <= TRACE_PAGE;
    document.getElementById("tpage").textContent = d.total ? `${offset + 1}–${Math.min(offset + TRACE_PAGE, d.total)} of ${d.total.toLocaleString()}` : "";
    document.getElementById("tprev").disabled = offset === 0;
    document.getElementById("tnext").disabled = offset + TRACE_PAGE >= d.total;
    return d;
  };
  document.getElementById("tprev").addEventListener("click", () => { offset = Math.max(0, offset - TRACE_PAGE); load(); });
  document.getElementById("tnext").addEventListener("click", () => { offset += TRACE_PAGE; load(); });
  const [d, rows] = await Promise.all([load(), api(`/api/report/runs?ref=${encodeURIComponent(ref)}&offset=${encodeURIComponent(run)}&limit=1`).catch(() => null)]);
  const x = rows && rows.runs[0];
  if (!x) return;
  if (!d) document.getElementById("tseed").textContent = `seed ${x.seed}`;
  const ok = d ? d.events.filter((e) => e.outcome === "ok").length : null;
  document.getElementById("tcards").innerHTML = `
    <div class="card"><div class="k">Result</div><div class="v">${x.success ? '<span class="chip ok">success</span>' : '<span class="chip bad">failed</span>'}</div><div class="s">${x.reason === "success" ? "" : esc(x.reason)}</div></div>
    <div class="card"><div class="k">Ticks</div><div class="v">${x.ticks}</div></div>
    <div class="card"><div class="k">Actions</div><div class="v">${x.actions}</div><div class="s">${x.failed_actions} failed</div></div>
    <div class="card"><div class="k">Events in the trace</div><div class="v">${d ? d.total.toLocaleString() : "–"}</div><div class="s">${d && d.total <= TRACE_PAGE ? ok + " ok" : ""}</div></div>`;
}
