// statserver's dashboard: renders the snapshots /dashboard/events pushes every second.
// Every name from the server is data: it reaches the page only through textContent and
// attribute values, never as markup. Read-only: the page only GETs.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const ROW_HEIGHT = 28;
  const OVERSCAN = 8;
  const STALE_MS = 3500;  // no snapshot for this long: say disconnected
  // columns of a snapshot's revision rows (snapshot.revision_columns)
  const NS = 0, NAME = 1, SC = 2, PC = 3, SR = 4, PR = 5, PODS = 6, AGE = 7;
  const COLUMNS = [
    {label: "namespace", index: NS},
    {label: "name", index: NAME},
    {label: "stable conc.", index: SC, num: true},
    {label: "panic conc.", index: PC, num: true},
    {label: "stable RPS", index: SR, num: true},
    {label: "panic RPS", index: PR, num: true},
    {label: "pods", index: PODS, num: true},
    {label: "last stat", index: AGE, num: true},
    {label: "concurrency"},
    {label: "RPS"},
  ];

  const state = {
    snapshot: null,
    rows: [],           // the snapshot's revision rows
    view: [],           // rows after filtering and sorting
    sortIndex: NS, sortDir: 1,  // the server's order (namespace, name): sorting it is linear
    namespace: "", text: "",
    namespaces: "",     // the namespace options now in the select, joined
    history: new Map(), // revision key -> {version, samples}
    historyVersion: null,
    historyLoading: false,
    selected: null,     // [namespace, name] of the revision view
    lastSnapshotAt: 0,
    firstRendered: false,
    renderMs: [],       // ms the latest snapshots took to parse and render
    source: null,
  };

  const $ = (id) => document.getElementById(id);
  const key = (ns, name) => ns + "\u0000" + name;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svgEl(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const name in attrs) node.setAttribute(name, attrs[name]);
    return node;
  }

  function fmt(value) {
    if (value === null || value === undefined) return "–";
    if (Math.abs(value) >= 10000) return value.toFixed(0);
    return value.toFixed(2);
  }

  function fmtAge(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    if (seconds < 3600) return (seconds / 60).toFixed(1) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  function isPanic(row, threshold) {
    const stable = row[SC], panic = row[PC];
    if (panic === null || stable === null || panic <= 0) return false;
    return panic >= threshold * stable;
  }

  // ---- live connection ----

  function setStatus(text, className) {
    const status = $("status");
    status.textContent = text;
    status.className = "status " + className;
    document.body.classList.toggle("stale", className !== "live");
  }

  function connect() {
    if (state.source) state.source.close();
    const source = new EventSource("events");
    state.source = source;
    source.addEventListener("snapshot", (event) => {
      state.lastSnapshotAt = Date.now();
      setStatus("live", "live");
      if (!state.firstRendered) performance.mark("statserver-first-snapshot");
      const started = performance.now();
      render(JSON.parse(event.data));
      state.renderMs.push(performance.now() - started);  // for benchmarks/dashboard.py
      if (state.renderMs.length > 60) state.renderMs.shift();
    });
    source.onerror = () => {
      setStatus("disconnected: reconnecting…", "disconnected");
      if (source.readyState === EventSource.CLOSED) {
        // the server refused the stream (503: stopping or full): try again ourselves
        setTimeout(() => { if (state.source === source) connect(); }, 1000);
      }
    };
  }

  function watchdog() {
    if (state.lastSnapshotAt && Date.now() - state.lastSnapshotAt > STALE_MS) {
      const seconds = Math.round((Date.now() - state.lastSnapshotAt) / 1000);
      setStatus("disconnected: no update for " + seconds + " s", "disconnected");
    }
  }

  // ---- rendering a snapshot ----

  function render(snapshot) {
    state.snapshot = snapshot;
    state.rows = snapshot.revisions;
    renderHeader(snapshot);
    renderCharts(snapshot);
    renderSenders(snapshot.connections);
    renderNamespaces();
    updateView();
    const times = snapshot.server_history.times;
    const version = times.length ? times[times.length - 1] : null;
    if (version !== state.historyVersion) {
      state.historyVersion = version;
      loadVisibleHistory();
    }
    if (state.selected) renderRevisionView();
    if (!state.firstRendered) {
      state.firstRendered = true;
      performance.mark("statserver-first-render");
    }
  }

  function renderHeader(snapshot) {
    const c = snapshot.config, s = snapshot.server;
    const rate = s.stats_per_second_gob + s.stats_per_second_json + s.stats_per_second_protobuf;
    $("summary").textContent = snapshot.revisions.length + " revisions · " +
      snapshot.connections.length + " senders · " + fmt(rate) + " stats/s · " +
      new Date(snapshot.time * 1000).toLocaleTimeString();
    $("config").textContent = "stable window " + c.stable_window_seconds + " s · panic window " +
      c.panic_window_seconds + " s · " + c.aggregation + " · history " +
      (c.history_length_seconds ? c.history_length_seconds + " s every " +
        c.history_resolution_seconds + " s" : "off");
  }

  // ---- server charts ----

  const CHARTS = [
    {title: "stats/s by format", series: ["stats_per_second_gob", "stats_per_second_json",
      "stats_per_second_protobuf"], keys: ["gob", "json", "protobuf"]},
    {title: "sender connections", series: ["connections"]},
    {title: "decode errors/s", series: ["decode_errors_per_second"]},
    {title: "rejected stats/s (aggregator)", series: ["rejected_stats_per_second"]},
    {title: "queue depth", series: ["queue_depth"]},
    {title: "backpressure (1: paused)", series: ["paused"]},
    {title: "dashboard viewers", series: ["viewers"]},
  ];

  function renderCharts(snapshot) {
    const box = $("charts");
    if (!box.firstChild) {
      for (const chart of CHARTS) {
        const node = el("div", "chart");
        const title = el("div", "title");
        title.append(el("span", "", chart.title), el("span", "value"));
        node.append(title, svgEl("svg", {viewBox: "0 0 200 48", preserveAspectRatio: "none"}));
        if (chart.keys) {
          const keys = el("div", "legend-keys");
          chart.keys.forEach((k, i) => keys.append(el("span", "k" + i, "— " + k)));
          node.append(keys);
        }
        box.append(node);
      }
    }
    const history = snapshot.server_history, current = snapshot.server;
    CHARTS.forEach((chart, i) => {
      const node = box.children[i];
      const now = chart.series.map((name) => current[name]);
      let text = now.map(fmtCount).join(" / ");
      if (chart.series[0] === "queue_depth") text += " of " + current.totals.queue_size;
      if (chart.series[0] === "decode_errors_per_second") text += " (" + current.totals.decode_errors + " in all)";
      if (chart.series[0] === "rejected_stats_per_second") {
        const r = current.totals.rejected_stats;
        text += " (" + (r.max_revisions + r.not_finite_or_no_time) + " in all)";
      }
      if (chart.series[0] === "paused") text += " (" + current.totals.backpressure_pauses + " pauses)";
      node.querySelector(".value").textContent = text;
      drawLines(node.querySelector("svg"), 200, 48,
        chart.series.map((name, k) => ({values: history[name] || [], className: "s" + k})));
    });
  }

  function fmtCount(value) {
    if (value === null || value === undefined) return "–";
    return Number.isInteger(value) ? String(value) : value.toFixed(1);
  }

  // Draws each {values, className} as a path scaled to the largest value (the first
  // on top); a null value breaks its line. Sets data-points to the number of points of
  // the first series; returns the largest value.
  function drawLines(svg, width, height, lines, withAxis) {
    while (svg.firstChild) svg.firstChild.remove();
    let max = 0, n = 0;
    for (const line of lines) {
      n = Math.max(n, line.values.length);
      for (const v of line.values) if (v !== null && v > max) max = v;
    }
    const top = 2, bottom = height - 2;
    if (withAxis) svg.append(svgEl("line", {x1: 0, y1: bottom, x2: width, y2: bottom, class: "axis"}));
    const scale = max > 0 ? (bottom - top) / max : 0;
    const step = n > 1 ? width / (n - 1) : 0;
    let drawn = 0;
    for (let li = lines.length - 1; li >= 0; li--) {
      const values = lines[li].values;
      let d = "", pen = false, count = 0;
      values.forEach((v, i) => {
        if (v === null || v === undefined) { pen = false; return; }
        const x = (n > 1 ? i * step : width / 2).toFixed(1);
        const y = (bottom - v * scale).toFixed(1);
        d += (pen ? "L" : "M") + x + " " + y + " ";
        if (!pen && (i === values.length - 1 || values[i + 1] === null)) {
          d += "l0.01 0 ";  // a lone point still shows
        }
        pen = true;
        count += 1;
      });
      if (li === 0) drawn = count;
      if (d) svg.append(svgEl("path", {d: d, class: lines[li].className}));
    }
    svg.setAttribute("data-points", String(drawn));
    return max;
  }

  // ---- senders ----

  function renderSenders(connections) {
    const body = $("senders-body");
    $("senders-count").textContent = "(" + connections.length + ")";
    $("senders-empty").hidden = connections.length > 0;
    while (body.rows.length > connections.length) body.lastChild.remove();
    while (body.rows.length < connections.length) {
      const tr = el("tr");
      for (let i = 0; i < 7; i++) tr.append(el("td", i >= 2 && i !== 5 ? "num" : ""));
      body.append(tr);
    }
    connections.forEach((c, i) => {
      const cells = body.rows[i].cells;
      cells[0].textContent = c.peer;
      cells[1].textContent = c.formats.length ? c.formats.map((f) => f.era).join(", ") : "no frame yet";
      cells[2].textContent = String(c.frames);
      cells[3].textContent = String(c.stats);
      cells[4].textContent = String(c.bad_frames);
      cells[4].className = c.bad_frames ? "num bad" : "num";
      const since = new Date(c.connected_since);
      cells[5].textContent = since.toLocaleString();
      cells[5].title = c.connected_since;
      cells[6].textContent = c.last_frame_age_seconds === null ? "none yet" : fmtAge(c.last_frame_age_seconds) + " ago";
    });
  }

  // ---- revisions table ----

  function buildHead() {
    const head = $("revisions-head");
    COLUMNS.forEach((column) => {
      const cell = el("div");
      cell.setAttribute("role", "columnheader");
      if (column.index === undefined) {
        cell.textContent = column.label;
      } else {
        const button = el("button", column.num ? "num" : "", column.label);
        button.type = "button";
        button.dataset.column = String(column.index);
        button.addEventListener("click", () => {
          if (state.sortIndex === column.index) state.sortDir = -state.sortDir;
          else { state.sortIndex = column.index; state.sortDir = column.num ? -1 : 1; }
          updateView();
        });
        cell.append(button);
      }
      head.append(cell);
    });
  }

  function renderNamespaces() {
    const names = Array.from(new Set(state.rows.map((r) => r[NS]))).sort();
    const joined = names.join("\u0000");
    if (joined === state.namespaces) return;
    state.namespaces = joined;
    const select = $("namespace-filter");
    while (select.options.length > 1) select.lastChild.remove();
    for (const name of names) {
      const option = el("option", "", name);
      option.value = name;
      select.append(option);
    }
    select.value = names.includes(state.namespace) ? state.namespace : "";
    state.namespace = select.value;
  }

  function compare(a, b) {
    const i = state.sortIndex, dir = state.sortDir;
    let x = a[i], y = b[i];
    if (x === null) x = -Infinity;
    if (y === null) y = -Infinity;
    if (x < y) return -dir;
    if (x > y) return dir;
    // ties: by namespace and name, always ascending
    if (a[NS] !== b[NS]) return a[NS] < b[NS] ? -1 : 1;
    return a[NAME] < b[NAME] ? -1 : a[NAME] > b[NAME] ? 1 : 0;
  }

  function updateView() {
    const ns = state.namespace, text = state.text.toLowerCase();
    let view = state.rows;
    if (ns || text) {
      view = view.filter((r) => (!ns || r[NS] === ns) &&
        (!text || (r[NS] + "/" + r[NAME]).toLowerCase().includes(text)));
    } else {
      view = view.slice();
    }
    view.sort(compare);
    state.view = view;
    const head = $("revisions-head").children;
    COLUMNS.forEach((column, i) => {
      const sort = column.index === state.sortIndex ? (state.sortDir > 0 ? "ascending" : "descending") : "none";
      head[i].setAttribute("aria-sort", sort);
    });
    $("revisions-count").textContent = "(" + (view.length === state.rows.length ? view.length :
      view.length + " of " + state.rows.length) + ")";
    $("revisions-empty").hidden = state.rows.length > 0;
    $("revisions-spacer").style.height = view.length * ROW_HEIGHT + "px";
    const tall = Math.max(ROW_HEIGHT * 3, Math.round(window.innerHeight * 0.6));
    $("revisions-viewport").style.height = Math.min(tall, view.length * ROW_HEIGHT + 2) + "px";
    $("revisions-viewport").hidden = view.length === 0;
    renderRows();
  }

  function visibleRange() {
    const viewport = $("revisions-viewport");
    const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const count = Math.ceil(viewport.clientHeight / ROW_HEIGHT) + 2 * OVERSCAN;
    return [first, Math.min(state.view.length, first + count)];
  }

  function makeRow() {
    const row = el("div", "grid row");
    row.setAttribute("role", "row");
    for (let i = 0; i < COLUMNS.length; i++) {
      const cell = el("div", COLUMNS[i].num ? "num" : "");
      cell.setAttribute("role", "cell");
      row.append(cell);
    }
    const link = el("a");
    link.href = "#";
    link.addEventListener("click", (event) => {
      event.preventDefault();
      openRevision(row.revision[NS], row.revision[NAME]);
    });
    row.children[NAME].append(link);
    row.children[8].append(svgEl("svg", {viewBox: "0 0 88 20", preserveAspectRatio: "none"}));
    row.children[9].append(svgEl("svg", {viewBox: "0 0 88 20", preserveAspectRatio: "none"}));
    return row;
  }

  function renderRows() {
    const box = $("revisions-rows");
    const [first, last] = visibleRange();
    const count = last - first;
    while (box.children.length > count) box.lastChild.remove();
    while (box.children.length < count) box.append(makeRow());
    box.style.transform = "translateY(" + first * ROW_HEIGHT + "px)";
    const threshold = state.snapshot ? state.snapshot.config.panic_threshold : 2;
    for (let i = 0; i < count; i++) {
      const r = state.view[first + i], row = box.children[i], cells = row.children;
      row.revision = r;
      row.dataset.namespace = r[NS];
      row.dataset.name = r[NAME];
      const panic = isPanic(r, threshold);
      row.className = panic ? "grid row panic" : "grid row";
      cells[NS].textContent = r[NS];
      cells[NS].title = r[NS];
      cells[NAME].firstChild.textContent = r[NAME];
      cells[NAME].title = r[NAME];
      for (const index of [SC, PC, SR, PR]) {
        cells[index].textContent = fmt(r[index]);
        cells[index].title = r[index] === null ? "" : String(r[index]);
      }
      if (panic) {
        const mark = el("span", "panic-mark", "▲ ");
        mark.title = "panic: panic-window concurrency ≥ " + threshold * 100 + " % of stable";
        cells[PC].prepend(mark);
      }
      cells[PODS].textContent = String(r[PODS]);
      cells[AGE].textContent = fmtAge(r[AGE]);
      drawSparklines(row, r);
    }
  }

  function drawSparklines(row, r) {
    const entry = state.history.get(key(r[NS], r[NAME]));
    const samples = entry ? entry.samples : [[], [], [], []];
    drawLines(row.children[8].firstChild, 88, 20,
      [{values: samples[0], className: "s0"}, {values: samples[1], className: "faint"}]);
    drawLines(row.children[9].firstChild, 88, 20,
      [{values: samples[2], className: "s0"}, {values: samples[3], className: "faint"}]);
  }

  // ---- history of the visible rows (and of the revision view) ----

  function loadVisibleHistory() {
    if (state.historyLoading || !state.snapshot || !state.snapshot.config.history_length_seconds) return;
    const [first, last] = visibleRange();
    const stale = ([ns, name]) => {
      const entry = state.history.get(key(ns, name));
      return !entry || entry.version !== state.historyVersion;
    };
    const wanted = state.view.slice(first, last).map((r) => [r[NS], r[NAME]]).filter(stale);
    if (state.selected && stale(state.selected)) wanted.push(state.selected);
    if (!wanted.length) return;
    const query = wanted.map(([ns, name]) =>
      "ns=" + encodeURIComponent(ns) + "&name=" + encodeURIComponent(name)).join("&");
    const version = state.historyVersion;
    state.historyLoading = true;
    let loaded = false;
    fetch("history?" + query, {cache: "no-store"})
      .then((response) => response.ok ? response.json() : Promise.reject(response.status))
      .then((body) => {
        if (state.history.size > 2000) state.history.clear();  // bounded: what was seen lately
        for (const [ns, name] of wanted) {  // no samples yet is an answer too
          state.history.set(key(ns, name), {version: version, samples: [[], [], [], []]});
        }
        for (const r of body.revisions) {
          state.history.set(key(r.namespace, r.name), {version: version, samples: r.samples});
        }
        loaded = true;
        renderRows();
        if (state.selected) renderRevisionView();
      })
      .catch(() => {})  // the next sample or scroll asks again
      .finally(() => {
        state.historyLoading = false;
        // rows scrolled into view meanwhile, or a newer sample
        if (loaded) loadVisibleHistory();
      });
  }

  // ---- one revision's view ----

  function openRevision(ns, name) {
    location.hash = "revision=" + encodeURIComponent(ns) + "/" + encodeURIComponent(name);
  }

  function selectedFromHash() {
    const match = /^#revision=([^/]*)\/(.*)$/.exec(location.hash);
    if (!match) return null;
    try {
      return [decodeURIComponent(match[1]), decodeURIComponent(match[2])];
    } catch (error) {  // a hand-edited address: show the overview
      return null;
    }
  }

  function onHash() {
    const selected = selectedFromHash();
    if (selected) {
      state.selected = selected;
      $("overview").hidden = true;
      $("revision-view").hidden = false;
      state.history.delete(key(state.selected[0], state.selected[1]));
      renderRevisionView();
      loadVisibleHistory();
    } else {
      state.selected = null;
      $("overview").hidden = false;
      $("revision-view").hidden = true;
      renderRows();
    }
  }

  function renderRevisionView() {
    const [ns, name] = state.selected;
    $("revision-title").textContent = ns + "/" + name;
    const row = state.rows.find((r) => r[NS] === ns && r[NAME] === name);
    $("revision-gone").hidden = !!row || !state.snapshot;
    if (row) {
      const threshold = state.snapshot.config.panic_threshold;
      $("revision-figures").textContent = "concurrency " + fmt(row[SC]) + " stable, " + fmt(row[PC]) +
        " panic · RPS " + fmt(row[SR]) + " stable, " + fmt(row[PR]) + " panic · " + row[PODS] +
        (row[PODS] === 1 ? " pod" : " pods") + " · last stat " + fmtAge(row[AGE]) + " ago" + (isPanic(row, threshold) ? " · ▲ panic" : "");
    }
    const entry = state.history.get(key(ns, name));
    const samples = entry ? entry.samples : [[], [], [], []];
    for (const [id, a, b] of [["revision-concurrency", 0, 1], ["revision-rps", 2, 3]]) {
      const box = $(id);
      let svg = box.firstChild;
      if (!svg) {
        svg = svgEl("svg", {viewBox: "0 0 600 200", preserveAspectRatio: "none"});
        box.append(svg);
      }
      const max = drawLines(svg, 600, 200, [{values: samples[a], className: "s0"},
        {values: samples[b], className: "faint"}], true);
      const c = state.snapshot ? state.snapshot.config : null;
      box.previousElementSibling.dataset.scale = "top " + fmt(max) +
        (c ? " · last " + c.history_length_seconds + " s, a point every " + c.history_resolution_seconds + " s" : "");
    }
  }

  // ---- start ----

  function start() {
    buildHead();
    $("text-filter").addEventListener("input", (event) => {
      state.text = event.target.value;
      updateView();
      loadVisibleHistory();
    });
    $("namespace-filter").addEventListener("change", (event) => {
      state.namespace = event.target.value;
      updateView();
      loadVisibleHistory();
    });
    let scheduled = false;
    $("revisions-viewport").addEventListener("scroll", () => {
      if (scheduled) return;
      scheduled = true;
      requestAnimationFrame(() => { scheduled = false; renderRows(); loadVisibleHistory(); });
    });
    $("revision-back").addEventListener("click", (event) => {
      event.preventDefault();
      history.pushState(null, "", location.pathname);
      onHash();
    });
    window.addEventListener("hashchange", onHash);
    onHash();
    connect();
    setInterval(watchdog, 1000);
  }

  // For tests and the curious: the rendering entry point and the state it keeps.
  window.statserverDashboard = {render: render, state: state};
  start();
})();
