// The live dashboard of a Jupiter deployment, served by home's control plane.
//
// One EventSource ("events", relative, so it also works under a proxy's path):
// a "snapshot" event with everything home keeps, then an "update" every second
// with what came since. The page keeps at most the windows home keeps (the sizes
// come in the snapshot's "limits") and draws five uPlot charts; the task stream
// is drawn by a uPlot draw hook, one rectangle per task run. For tests and
// scripts the body carries data-bars (task runs held) and data-updates
// (messages applied).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const state = {
    info: null,
    rows: [], // nodes of the task stream, top first
    row: {}, // node -> row
    colours: {}, // task -> colour
    nodeColours: {}, // node -> colour
    bars: [],
    frames: [],
    resources: {},
    links: {},
    mapping: {},
    placements: {},
    recent: [],
    failures: [],
    now: 0,
    limits: { bars: 10000, series: 900, resources: 450 },
    updates: 0,
  };
  const charts = {};
  let windowSeconds = Number($("window").value);

  // ------------------------------------------------------------ formatting

  function seconds(value) {
    if (value === null || value === undefined || Number.isNaN(value)) return "-";
    if (value < 1) return `${(value * 1000).toFixed(value < 0.01 ? 1 : 0)} ms`;
    return `${value.toFixed(value < 10 ? 2 : 1)} s`;
  }

  function bytes(value) {
    if (value === null || value === undefined) return "-";
    const units = ["B/s", "kB/s", "MB/s", "GB/s"];
    let unit = 0;
    while (Math.abs(value) >= 1000 && unit < units.length - 1) {
      value /= 1000;
      unit += 1;
    }
    return `${value.toFixed(value < 10 && unit > 0 ? 1 : 0)} ${units[unit]}`;
  }

  function darker(hex, factor = 0.62) {
    // Node colours are pale (text sits on them in the DAG); lines of that colour need more contrast.
    const value = parseInt(hex.slice(1), 16);
    const channel = (shift) => Math.round(((value >> shift) & 255) * factor);
    return `rgb(${channel(16)}, ${channel(8)}, ${channel(0)})`;
  }

  function trim(list, limit) {
    if (list.length > limit) list.splice(0, list.length - limit);
  }

  function text(element, value) {
    element.textContent = value;
  }

  // ---------------------------------------------------------------- charts

  function width(element) {
    return Math.max(300, element.clientWidth || 600);
  }

  function timeRange() {
    return [state.now - windowSeconds, state.now];
  }

  function lineChart(element, height, series, axes) {
    const opts = {
      width: width(element),
      height,
      cursor: { drag: { x: false, y: false, setScale: false } },
      scales: { x: { time: true, range: () => timeRange() } },
      series: [{}, ...series],
      axes: [{}, ...axes],
      legend: { live: true },
    };
    return new uPlot(opts, [[], ...series.map(() => [])], element);
  }

  function makeCharts() {
    charts.frames = lineChart(
      $("frames-chart"),
      200,
      [
        { label: "in flight", stroke: "#4363d8", width: 1.5, scale: "frames" },
        { label: "done per s", stroke: "#3cb44b", width: 1.5, scale: "rate" },
        { label: "failed per s", stroke: "#e6194b", width: 1.5, scale: "rate" },
      ],
      [
        { scale: "frames", label: "frames in flight" },
        { scale: "rate", side: 1, grid: { show: false }, label: "frames per second" },
      ],
    );
    const nodeSeries = (value) =>
      state.info.nodes.map((node) => ({
        label: node.name,
        stroke: node.role === "compute" ? darker(node.colour) : "#888888",
        width: node.role === "compute" ? 2 : 1,
        spanGaps: true,
        value,
      }));
    charts.cpu = lineChart($("cpu-chart"), 200, nodeSeries((u, v) => (v == null ? "-" : `${v.toFixed(0)} %`)), [
      { values: (u, vals) => vals.map((v) => `${v} %`), size: 55 },
    ]);
    charts.memory = lineChart($("memory-chart"), 200, nodeSeries((u, v) => (v == null ? "-" : `${v.toFixed(0)} MiB`)), [
      { size: 55 },
    ]);
    charts.stream = streamChart($("stream"));
  }

  function linksChart() {
    // Rebuilt when the set of links shown changes (series cannot be added to a uPlot in place cheaply).
    const element = $("links-chart");
    const shown = topLinks();
    const key = shown.join(",");
    if (charts.links && charts.linksKey === key) return shown;
    if (charts.links) charts.links.destroy();
    element.textContent = "";
    charts.linksKey = key;
    charts.links = shown.length
      ? lineChart(
          element,
          200,
          shown.map((link, index) => ({
            label: link.replace(">", " \u2192 "),
            stroke: ["#4363d8", "#f58231", "#3cb44b", "#911eb4", "#e6194b", "#42d4f4", "#9a6324", "#f032e6"][index % 8],
            width: 1.5,
            spanGaps: true,
            value: (u, v) => (v == null ? "-" : bytes(v)),
          })),
          [{ values: (u, vals) => vals.map((v) => bytes(v)), size: 70 }],
        )
      : null;
    $("links-empty").hidden = shown.length > 0;
    return shown;
  }

  function topLinks() {
    const totals = Object.entries(state.links).map(([link, points]) => [
      link,
      points.reduce((sum, p) => sum + p[1], 0),
    ]);
    totals.sort((a, b) => b[1] - a[1]);
    return totals
      .filter((entry) => entry[1] > 0)
      .slice(0, 8)
      .map((entry) => entry[0])
      .sort();
  }

  function streamChart(element) {
    const rows = state.rows;
    const opts = {
      width: width(element),
      height: Math.max(120, 34 * rows.length + 50),
      cursor: { x: false, y: false, points: { show: false }, drag: { x: false, y: false, setScale: false } },
      legend: { show: false },
      scales: {
        x: { time: true, range: () => timeRange() },
        y: { auto: false, range: [-0.5, rows.length - 0.5] },
      },
      series: [{}, { show: false }],
      axes: [
        {},
        {
          size: 90,
          grid: { show: false },
          splits: () => rows.map((_, index) => index),
          values: (u, splits) => splits.map((y) => rows[rows.length - 1 - y] || ""),
        },
      ],
      hooks: { draw: [drawBars], setCursor: [hover] },
    };
    return new uPlot(opts, [[], []], element);
  }

  function drawBars(u) {
    const ctx = u.ctx;
    const box = u.bbox;
    const rows = state.rows.length;
    const rowHeight = Math.abs(u.valToPos(0, "y", true) - u.valToPos(1, "y", true));
    const height = Math.max(2, rowHeight * 0.7);
    const [from, to] = timeRange();
    ctx.save();
    ctx.beginPath();
    ctx.rect(box.left, box.top, box.width, box.height);
    ctx.clip();
    let drawn = 0;
    for (const bar of state.bars) {
      if (bar.end < from || bar.start > to || bar.row === undefined) continue;
      const left = u.valToPos(bar.start, "x", true);
      const right = u.valToPos(bar.end, "x", true);
      const middle = u.valToPos(rows - 1 - bar.row, "y", true);
      ctx.fillStyle = state.colours[bar.task] || "#888888";
      ctx.fillRect(left, middle - height / 2, Math.max(1, right - left), height);
      if (!bar.ok) {
        ctx.strokeStyle = "#000000";
        ctx.strokeRect(left, middle - height / 2, Math.max(1, right - left), height);
      }
      drawn += 1;
    }
    ctx.restore();
    document.body.dataset.drawn = String(drawn);
  }

  function hover(u) {
    const tooltip = $("tooltip");
    const left = u.cursor.left;
    const top = u.cursor.top;
    if (left === undefined || left < 0 || !state.rows.length) {
      tooltip.hidden = true;
      return;
    }
    const time = u.posToVal(left, "x");
    const row = state.rows.length - 1 - Math.round(u.posToVal(top, "y"));
    const [from, to] = timeRange();
    const slack = ((to - from) / u.bbox.width) * 4 * (window.devicePixelRatio || 1);
    let best = null;
    for (const bar of state.bars) {
      if (bar.row !== row || bar.start - slack > time || bar.end + slack < time) continue;
      const distance = time < bar.start ? bar.start - time : time > bar.end ? time - bar.end : 0;
      if (best === null || distance < best[0]) best = [distance, bar];
    }
    if (best === null) {
      tooltip.hidden = true;
      return;
    }
    const bar = best[1];
    const where = u.over.getBoundingClientRect();
    tooltip.textContent =
      `${bar.task} on ${bar.node}${bar.ok ? "" : " (failed)"}\nframe ${bar.frame}\n` +
      `ran ${seconds(bar.end - bar.start)}, waited ${seconds(bar.waited)} on the node`;
    tooltip.style.left = `${where.left + left + 14}px`;
    tooltip.style.top = `${where.top + top + 14}px`;
    tooltip.hidden = false;
  }

  function legend() {
    const element = $("stream-legend");
    element.textContent = "";
    for (const task of state.info.tasks) {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = task.colour;
      item.append(swatch, task.name);
      element.append(item);
    }
  }

  // --------------------------------------------------------------- drawing

  function drawFrames() {
    const xs = [];
    const inFlight = [];
    const done = [];
    const failed = [];
    for (let i = 0; i < state.frames.length; i += 1) {
      const [t, , d, f, flying] = state.frames[i];
      xs.push(t);
      inFlight.push(flying);
      if (i === 0) {
        done.push(null);
        failed.push(null);
      } else {
        const previous = state.frames[i - 1];
        const dt = Math.max(1e-3, t - previous[0]);
        done.push((d - previous[2]) / dt);
        failed.push((f - previous[3]) / dt);
      }
    }
    charts.frames.setData([xs, inFlight, done, failed]);
  }

  function drawResources(chart, column) {
    const tables = state.info.nodes.map((node) => {
      const points = state.resources[node.name] || [];
      return [points.map((p) => p[0]), points.map((p) => p[column])];
    });
    chart.setData(tables.length ? uPlot.join(tables) : [[]]);
  }

  function drawLinks() {
    const shown = linksChart();
    if (!charts.links) return;
    const tables = shown.map((link) => [state.links[link].map((p) => p[0]), state.links[link].map((p) => p[1])]);
    charts.links.setData(uPlot.join(tables));
  }

  function draw() {
    drawFrames();
    drawResources(charts.cpu, 1);
    drawResources(charts.memory, 2);
    drawLinks();
    charts.stream.setData([timeRange(), [null, null]]);
    drawDag();
    drawRecent();
    drawFailures();
  }

  // ------------------------------------------------------------------- DAG

  function svg(name, attributes, parent) {
    const element = document.createElementNS("http://www.w3.org/2000/svg", name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (parent) parent.append(element);
    return element;
  }

  function layers() {
    const depth = {};
    const out = [];
    for (const task of state.info.tasks) {
      const parents = task.parents.filter((p) => p in depth);
      depth[task.name] = parents.length ? 1 + Math.max(...parents.map((p) => depth[p])) : 0;
      (out[depth[task.name]] = out[depth[task.name]] || []).push(task);
    }
    return out;
  }

  function placementLine(task) {
    const counts = state.placements[task] || {};
    const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
    if (!entries.length) return "no run yet";
    if (state.info.scheme === "nonpricing") return `${entries.reduce((s, e) => s + e[1], 0)} runs`;
    return entries
      .slice(0, 3)
      .map(([node, count]) => `${node} ${count}`)
      .join(" \u00b7 ");
  }

  function drawDag() {
    const element = $("dag");
    const columns = layers();
    const tall = Math.max(...columns.map((c) => c.length));
    // Wide enough for the longest of each box's three lines (names, nodes, placements).
    const longest = state.info.tasks.map((t) =>
      Math.max(t.name.length, `@ ${state.mapping[t.name] || "not mapped yet"}`.length, placementLine(t.name).length),
    );
    const boxWidth = 16 + 7.2 * Math.max(...longest, 12);
    const boxHeight = 52;
    const gapX = 46;
    const gapY = 14;
    const totalWidth = columns.length * (boxWidth + gapX) - gapX + 20;
    const totalHeight = tall * (boxHeight + gapY) - gapY + 20;
    const where = {};
    columns.forEach((column, x) => {
      const offset = ((tall - column.length) * (boxHeight + gapY)) / 2;
      column.forEach((task, y) => {
        where[task.name] = [10 + x * (boxWidth + gapX), 10 + offset + y * (boxHeight + gapY)];
      });
    });
    const root = svg("svg", { viewBox: `0 0 ${totalWidth} ${totalHeight}`, width: totalWidth, role: "img" });
    const defs = svg("defs", {}, root);
    const marker = svg(
      "marker",
      { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
      defs,
    );
    svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#666" }, marker);
    for (const task of state.info.tasks) {
      for (const parent of task.parents) {
        if (!(parent in where)) continue;
        const [px, py] = where[parent];
        const [cx, cy] = where[task.name];
        svg(
          "line",
          {
            x1: px + boxWidth,
            y1: py + boxHeight / 2,
            x2: cx,
            y2: cy + boxHeight / 2,
            stroke: "#888",
            "marker-end": "url(#arrow)",
          },
          root,
        );
      }
    }
    for (const task of state.info.tasks) {
      const [x, y] = where[task.name];
      const node = state.mapping[task.name] || "not mapped yet";
      const group = svg("g", { "data-task": task.name }, root);
      svg(
        "rect",
        {
          x,
          y,
          width: boxWidth,
          height: boxHeight,
          rx: 6,
          fill: state.nodeColours[node] || "#eeeeee",
          stroke: "#444",
        },
        group,
      );
      svg("rect", { x, y, width: 7, height: boxHeight, rx: 3, fill: task.colour }, group);
      const lines = [task.name, `@ ${node}`, placementLine(task.name)];
      lines.forEach((line, index) => {
        const label = svg("text", { x: x + 12, y: y + 16 + index * 15, fill: index === 2 ? "#444" : "#111" }, group);
        label.textContent = line;
      });
    }
    element.textContent = "";
    element.append(root);
    const legendBox = document.createElement("div");
    legendBox.className = "legend";
    for (const node of state.info.nodes.filter((n) => n.role === "compute")) {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = node.colour;
      item.append(swatch, node.name);
      legendBox.append(item);
    }
    element.append(legendBox);
    text(
      $("dag-note"),
      state.info.scheme === "nonpricing"
        ? "each task on its mapped node; runs so far"
        : `${state.info.scheme} pricing: each task's controller, and where its frames ran (most first)`,
    );
  }

  function drawRecent() {
    const element = $("recent");
    if (state.info.scheme === "nonpricing" || !state.recent.length) {
      element.textContent = "";
      return;
    }
    const table = document.createElement("table");
    const head = table.insertRow();
    for (const title of ["recent frame", ...state.info.tasks.map((t) => t.name)]) {
      const cell = document.createElement("th");
      cell.textContent = title;
      head.append(cell);
    }
    for (const [frame, tasks] of state.recent.slice(-12).reverse()) {
      const row = table.insertRow();
      row.insertCell().textContent = frame;
      for (const task of state.info.tasks) {
        const cell = row.insertCell();
        const node = tasks[task.name];
        cell.textContent = node || "";
        if (node) cell.style.background = state.nodeColours[node] || "";
      }
    }
    element.textContent = "";
    element.append(table);
  }

  function drawFailures() {
    $("failures-section").hidden = !state.failures.length;
    const list = $("failures");
    list.textContent = "";
    for (const [time, frame, reason] of state.failures.slice().reverse()) {
      const item = document.createElement("li");
      item.textContent = `${new Date(time * 1000).toLocaleTimeString()} ${frame}: ${reason}`;
      list.append(item);
    }
  }

  // -------------------------------------------------------------- messages

  function start(message) {
    state.info = message;
    state.limits = message.limits || state.limits;
    state.colours = Object.fromEntries(message.tasks.map((t) => [t.name, t.colour]));
    state.nodeColours = Object.fromEntries(message.nodes.map((n) => [n.name, n.colour]));
    state.rows = message.nodes.filter((n) => n.role === "compute").map((n) => n.name);
    state.row = Object.fromEntries(state.rows.map((name, index) => [name, index]));
    state.bars = [];
    state.frames = [];
    state.resources = {};
    state.links = {};
    state.failures = [];
    text($("app"), message.app);
    text($("deployment"), `deployment ${message.deployment} \u00b7 home ${message.home}`);
    text($("scheme"), message.scheme === "nonpricing" ? "" : `${message.scheme} pricing`);
    for (const name of Object.keys(charts)) {
      if (charts[name] && charts[name].destroy) charts[name].destroy();
      delete charts[name];
    }
    for (const id of ["frames-chart", "cpu-chart", "memory-chart", "links-chart", "stream"]) $(id).textContent = "";
    makeCharts();
    legend();
  }

  function apply(message) {
    state.now = message.now;
    state.mapping = message.mapping;
    state.placements = message.placements;
    state.recent = message.recent;
    for (const b of message.bars) {
      const row = state.row[b[0]];
      state.bars.push({ node: b[0], row, task: b[1], start: b[2], end: b[3], frame: b[4], ok: b[5], waited: b[6] });
    }
    trim(state.bars, state.limits.bars);
    state.frames.push(...message.frames);
    trim(state.frames, state.limits.series);
    for (const [link, points] of Object.entries(message.links)) {
      const kept = (state.links[link] = state.links[link] || []);
      kept.push(...points);
      trim(kept, state.limits.series);
    }
    for (const [node, points] of Object.entries(message.resources)) {
      const kept = (state.resources[node] = state.resources[node] || []);
      kept.push(...points);
      trim(kept, state.limits.resources);
    }
    state.failures.push(...message.failures);
    trim(state.failures, 20);
    const counts = message.counts || {};
    text($("submitted"), counts.submitted ?? 0);
    text($("in-flight"), counts.in_flight ?? 0);
    text($("done"), counts.done ?? 0);
    text($("failed"), counts.failed ?? 0);
    text($("throughput"), (counts.throughput ?? 0).toFixed(2));
    text($("throughput-window"), Math.round(counts.throughput_window || 30));
    text($("p50"), counts.done ? seconds(counts.makespan_p50) : "-");
    state.updates += 1;
    document.body.dataset.bars = String(state.bars.length);
    document.body.dataset.updates = String(state.updates);
    draw();
  }

  function connect() {
    const status = $("connection");
    const source = new EventSource("events");
    source.addEventListener("snapshot", (event) => {
      const message = JSON.parse(event.data);
      start(message);
      apply(message);
      status.className = "state live";
      text(status, "live");
    });
    source.addEventListener("update", (event) => apply(JSON.parse(event.data)));
    source.onerror = () => {
      // EventSource reconnects by itself (home said `retry: 2000`); a new snapshot starts over.
      status.className = "state lost";
      text(status, "reconnecting");
    };
    return source;
  }

  $("window").addEventListener("change", (event) => {
    windowSeconds = Number(event.target.value);
    if (state.info) draw();
  });
  window.addEventListener("resize", () => {
    for (const chart of Object.values(charts)) {
      if (chart && chart.setSize) chart.setSize({ width: width(chart.root.parentElement), height: chart.height });
    }
  });
  window.jupiterDashboard = { state, charts, source: connect() };
})();
