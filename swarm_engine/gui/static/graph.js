/* Graph drawing in plain SVG: the scenario's dependency graph (a layered
   layout: layers by longest path from the start actions, order by the
   barycentre of the previous layer) and a live run's exploration tree (a
   radial layout: depth is the radius, leaves share the circle). */
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs, parent) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

function dagLayers(g) {
  const succ = new Map(g.nodes.map((n) => [n, []]));
  const pred = new Map(g.nodes.map((n) => [n, []]));
  for (const e of g.edges) {
    if (succ.has(e.from) && succ.has(e.to) && e.from !== e.to) { succ.get(e.from).push(e.to); pred.get(e.to).push(e.from); }
  }
  // longest path from the start nodes, each edge relaxed once per pass (cycles: bounded passes)
  const layer = new Map();
  const starts = g.start.length ? g.start : g.nodes.filter((n) => !pred.get(n).length);
  for (const s of starts) layer.set(s, 0);
  for (let pass = 0; pass < g.nodes.length; pass++) {
    let changed = false;
    for (const e of g.edges) {
      if (!layer.has(e.from) || e.from === e.to) continue;
      const want = layer.get(e.from) + 1;
      if (want < g.nodes.length && (!layer.has(e.to) || layer.get(e.to) < want)) { layer.set(e.to, want); changed = true; }
    }
    if (!changed) break;
  }
  let maxL = Math.max(0, ...layer.values());
  for (const n of g.nodes) if (!layer.has(n)) layer.set(n, ++maxL);   // unreachable: own layer at the end
  const layers = [];
  for (const n of g.nodes) { const l = layer.get(n); (layers[l] = layers[l] || []).push(n); }
  const compact = layers.filter(Boolean);
  for (let sweep = 0; sweep < 4; sweep++) {               // barycentre ordering, two sweeps each way
    const pos = new Map();
    compact.forEach((ns) => ns.forEach((n, i) => pos.set(n, i)));
    const down = sweep % 2 === 0;
    const seq = down ? compact.slice(1) : compact.slice(0, -1).reverse();
    for (const ns of seq) {
      const key = (n) => {
        const nb = down ? pred.get(n) : succ.get(n);
        const ps = nb.filter((m) => pos.has(m)).map((m) => pos.get(m));
        return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : pos.get(n);
      };
      ns.sort((a, b) => key(a) - key(b));
      ns.forEach((n, i) => pos.set(n, i));
    }
  }
  return compact;
}

/** Draw a dependency graph {nodes, edges, start, terminal} into `host`. */
function drawDag(host, g) {
  host.innerHTML = "";
  const layers = dagLayers(g);
  const measure = (t) => Math.max(70, 12 + t.length * 7.4);
  const colW = layers.map((ns) => Math.max(...ns.map(measure)));
  const gapX = 70, gapY = 22, h = 34, pad = 24;
  const tallest = Math.max(...layers.map((ns) => ns.length));
  const height = pad * 2 + tallest * h + (tallest - 1) * gapY;
  const xs = []; let x = pad;
  for (const w of colW) { xs.push(x); x += w + gapX; }
  const width = x - gapX + pad;
  const at = new Map();
  layers.forEach((ns, li) => {
    const total = ns.length * h + (ns.length - 1) * gapY;
    ns.forEach((n, i) => at.set(n, { x: xs[li], y: (height - total) / 2 + i * (h + gapY), w: colW[li] }));
  });
  const svg = svgEl("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
                             "aria-label": "dependency graph" }, host);
  const defs = svgEl("defs", {}, svg);
  const mk = svgEl("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
                               orient: "auto-start-reverse" }, defs);
  svgEl("path", { d: "M0,0 L10,5 L0,10 z", fill: "#9aa2b8" }, mk);
  for (const e of g.edges) {
    const a = at.get(e.from), b = at.get(e.to);
    if (!a || !b) continue;
    let d, lx, ly;
    if (e.from === e.to) {
      d = `M${a.x + a.w - 14},${a.y} c 10,-26 34,-26 12,2`; lx = a.x + a.w; ly = a.y - 16;
    } else if (b.x > a.x) {
      const x1 = a.x + a.w, y1 = a.y + h / 2, x2 = b.x, y2 = b.y + h / 2, m = (x1 + x2) / 2;
      d = `M${x1},${y1} C${m},${y1} ${m},${y2} ${x2 - 2},${y2}`; lx = m; ly = (y1 + y2) / 2 - 4;
    } else {                                              // back edge: an arc below
      const x1 = a.x + a.w / 2, y1 = a.y + h, x2 = b.x + b.w / 2, y2 = b.y + h, dip = Math.max(y1, y2) + 40;
      d = `M${x1},${y1} C${x1},${dip} ${x2},${dip} ${x2},${y2 + 2}`; lx = (x1 + x2) / 2; ly = dip - 8;
    }
    svgEl("path", { d, class: "gedge", "marker-end": "url(#arrow)" }, svg);
    if (e.confidence !== undefined && e.confidence !== 1) {
      svgEl("text", { x: lx, y: ly, class: "glabel", "text-anchor": "middle" }, svg).textContent = (+e.confidence).toFixed(2);
    }
  }
  for (const n of g.nodes) {
    const p = at.get(n);
    const cls = ["gnode"];
    if (g.start.includes(n)) cls.push("start");
    if (g.terminal.includes(n)) cls.push("terminal");
    const grp = svgEl("g", { class: cls.join(" "), transform: `translate(${p.x},${p.y})`, "data-action": n }, svg);
    svgEl("rect", { width: p.w, height: h }, grp);
    svgEl("text", { x: p.w / 2, y: h / 2 + 4, "text-anchor": "middle" }, grp).textContent = n;
    const pv = (g.param_variants || {})[n];
    svgEl("title", {}, grp).textContent = n + (pv ? ` (one child per ${pv.key}: ${pv.values.join(", ")})` : "");
  }
  return svg;
}

const STATE_COLORS = { open: "#94a3b8", assigned: "#3b82f6", ok: "#16a34a", fail: "#dc2626" };

/** Draw an exploration tree [{id, parent, action, target, state}] radially into `host`. */
function drawTree(host, nodes, busy, size) {
  size = size || 560;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const kids = new Map();
  const roots = [];
  for (const n of nodes) {
    if (n.parent >= 0 && byId.has(n.parent)) {
      if (!kids.has(n.parent)) kids.set(n.parent, []);
      kids.get(n.parent).push(n.id);
    } else roots.push(n.id);
  }
  const depth = new Map(), leaves = new Map();
  let maxDepth = 0;
  const stack = roots.map((r) => [r, 0]);
  const order = [];
  while (stack.length) {                                  // iterative DFS: deep runs must not overflow
    const [id, d] = stack.pop();
    depth.set(id, d); maxDepth = Math.max(maxDepth, d); order.push(id);
    const ks = kids.get(id) || [];
    for (let i = ks.length - 1; i >= 0; i--) stack.push([ks[i], d + 1]);
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const id = order[i], ks = kids.get(id) || [];
    leaves.set(id, ks.length ? ks.reduce((a, k) => a + leaves.get(k), 0) : 1);
  }
  const total = roots.reduce((a, r) => a + leaves.get(r), 0) || 1;
  const R = size / 2 - 18, ring = R / Math.max(1, maxDepth + 0.5);
  const pos = new Map();
  const place = (id, a0, a1) => {
    const d = depth.get(id), a = (a0 + a1) / 2;
    const r = d === 0 && roots.length === 1 ? 0 : (d + 0.5) * ring;
    pos.set(id, [size / 2 + r * Math.cos(a), size / 2 + r * Math.sin(a)]);
    let s = a0;
    for (const k of kids.get(id) || []) { const span = (a1 - a0) * leaves.get(k) / leaves.get(id); place(k, s, s + span); s += span; }
  };
  // recursion depth = tree depth (a few dozen), not the node count
  let s = -Math.PI / 2;
  for (const r of roots) { const span = 2 * Math.PI * leaves.get(r) / total; place(r, s, s + span); s += span; }
  host.innerHTML = "";
  const svg = svgEl("svg", { width: size, height: size, viewBox: `0 0 ${size} ${size}`, role: "img",
                             "aria-label": "exploration graph", "data-nodes": nodes.length }, host);
  const edges = svgEl("g", { stroke: "#c5cad8", "stroke-width": 0.8 }, svg);
  for (const n of nodes) {
    if (n.parent >= 0 && pos.has(n.parent)) {
      const [x1, y1] = pos.get(n.parent), [x2, y2] = pos.get(n.id);
      svgEl("line", { x1, y1, x2, y2 }, edges);
    }
  }
  const rad = nodes.length > 600 ? 2.6 : nodes.length > 150 ? 3.6 : 5;
  for (const n of nodes) {
    const [cx, cy] = pos.get(n.id);
    const c = svgEl("circle", { cx, cy, r: rad, fill: STATE_COLORS[n.state] || "#999", class: "tnode",
                                "data-state": n.state }, svg);
    if (busy && busy.has(n.id)) { c.setAttribute("stroke", "#111827"); c.setAttribute("stroke-width", 1.6); }
    svgEl("title", {}, c).textContent = `#${n.id} ${n.action}(${[n.target, n.arg].filter((x) => x !== null && x !== undefined).join(", ")}) ${n.state}, tick ${n.tick}`;
  }
  return svg;
}

window.swarmGraph = { drawDag, drawTree, STATE_COLORS };
