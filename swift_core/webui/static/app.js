// The Swift web UI page: forms from /api/commands/*, jobs from /api/jobs, live events by SSE.
// Plain JavaScript, no build step: the server ships these three files as they are.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { choices: {}, fields: [], command: null, job: null, events: null,
                logOffset: 0, metricOffset: 0, metrics: [], rawLog: "", previewTimer: null };
const OPEN_GROUPS = ["model", "data", "tuner", "training", "output", "alignment", "quantization", "export", "eval", "server"];

async function api(path, options = {}) {
  const resp = await fetch(path, { headers: { "Content-Type": "application/json" }, ...options });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.error || `${resp.status} ${resp.statusText}`);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// -- the form ---------------------------------------------------------------------------------

function shown(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function inputFor(f) {
  const id = `f-${f.name}`;
  const choices = f.choices.length ? f.choices : (state.choices[f.name] || []);
  let input;
  if (f.type === "bool") {
    input = el("select", { id, name: f.name });
    for (const v of ["", "true", "false"]) input.append(el("option", { value: v, text: v || `(default: ${shown(f.default) || "unset"})` }));
  } else if (choices.length && !f.list) {
    input = el("select", { id, name: f.name });
    if (!choices.includes(shown(f.default))) input.append(el("option", { value: "", text: "(default)" }));
    for (const c of choices) input.append(el("option", { value: c, text: c }));
    input.value = choices.includes(shown(f.default)) ? shown(f.default) : "";
  } else {
    input = el("input", { id, name: f.name, placeholder: shown(f.default), size: 30 });
    if (f.list && choices.length) {
      const listId = `dl-${f.name}`;
      input.setAttribute("list", listId);
      const dl = el("datalist", { id: listId });
      for (const c of choices) dl.append(el("option", { value: c }));
      input.after(dl);
    }
  }
  input.addEventListener("input", onFormChange);
  input.addEventListener("change", onFormChange);
  return input;
}

function renderForm(schema) {
  state.fields = schema.fields;
  const form = $("form");
  form.replaceChildren();
  const groups = new Map();
  for (const f of schema.fields) {
    if (!groups.has(f.group)) groups.set(f.group, []);
    groups.get(f.group).push(f);
  }
  for (const [group, fields] of groups) {
    const isCapability = fields[0].capability_option;
    const details = el("details", { class: "group", "data-group": group,
                                    "data-capabilities": isCapability ? fields[0].capabilities.join(",") : "" });
    if (!isCapability && OPEN_GROUPS.includes(group)) details.open = true;
    details.append(el("summary", { text: isCapability ? `Options of ${group}` : (group || "other") }));
    for (const f of fields) {
      const row = el("div", { class: "field" }, el("label", { for: `f-${f.name}`, text: f.name + (f.required ? " *" : "") }));
      row.append(inputFor(f));
      row.append(el("div", { class: "help", text: f.help + (f.list ? " (several: separate with commas)" : "") }));
      details.append(row);
    }
    form.append(details);
  }
  showRelevantOptions();
  onFormChange();
}

function formValues() {
  const values = {};
  for (const f of state.fields) {
    const input = $(`f-${f.name}`);
    if (!input || input.value === "") continue;
    let v = input.value;
    if (f.list) v = v.split(",").map((s) => s.trim()).filter(Boolean);
    else if (f.type === "int" || f.type === "float") v = Number(v);
    else if (f.type === "bool") v = v === "true";
    else if (f.type === "json") { try { v = JSON.parse(v); } catch (e) { /* the server reports it */ } }
    values[f.name] = v;
  }
  return values;
}

function showRelevantOptions() {
  // A capability's options are shown only while a selector (tuner_type, rlhf_type, ...) picks it.
  const picked = new Set();
  for (const f of state.fields) {
    const input = $(`f-${f.name}`);
    if (input && state.choices[f.name] && !f.list) picked.add(input.value || shown(f.default));
  }
  for (const details of document.querySelectorAll("details.group")) {
    const caps = details.dataset.capabilities;
    if (caps) details.hidden = !caps.split(",").some((c) => picked.has(c));
  }
}

function onFormChange() {
  showRelevantOptions();
  clearTimeout(state.previewTimer);
  state.previewTimer = setTimeout(updatePreview, 150);
}

async function updatePreview() {
  try {
    const p = await api("/api/preview", { method: "POST", body: JSON.stringify({ command: state.command, values: formValues() }) });
    $("preview-cli").textContent = p.cli;
    $("preview-yaml").textContent = p.yaml;
    $("form-error").textContent = "";
  } catch (e) { $("form-error").textContent = e.message; }
}

async function loadCommand(command) {
  if (command === state.command && state.fields.length) return;  // keep what was typed
  state.command = command;
  renderForm(await api(`/api/commands/${command}`));
}

async function startJob() {
  $("form-error").textContent = "";
  try {
    const job = await api("/api/jobs", { method: "POST", body: JSON.stringify({ command: state.command, values: formValues() }) });
    await refreshJobs();
    selectJob(job.id);
  } catch (e) { $("form-error").textContent = e.message; }
}

// -- jobs -------------------------------------------------------------------------------------

async function refreshJobs() {
  const { jobs } = await api("/api/jobs");
  const body = $("jobs-table").querySelector("tbody");
  body.replaceChildren();
  for (const j of jobs) {
    const row = el("tr", { "data-job": j.id, class: j.id === state.job ? "selected" : "" },
      el("td", { text: j.id }), el("td", { text: j.command }),
      el("td", {}, el("span", { class: `status ${j.status}`, text: j.status })), el("td"));
    const open = el("button", { type: "button", text: "open" });
    open.addEventListener("click", () => selectJob(j.id));
    row.lastChild.append(open);
    body.append(row);
  }
  const { checkpoints } = await api("/api/checkpoints");
  const dl = $("chat-targets");
  dl.replaceChildren(...checkpoints.map((c) => el("option", { value: c.path, text: `${c.job}` })));
}

function setStatus(job) {
  const s = $("job-status");
  s.textContent = job.status;
  s.className = `status ${job.status}`;
  $("stop").disabled = !["starting", "running"].includes(job.status);
  $("resume").disabled = ["starting", "running", "stopping", "finished"].includes(job.status) || !job.resumable;
  if (job.checkpoints) {
    $("checkpoints").replaceChildren(...job.checkpoints.map((c) => {
      const b = el("button", { type: "button", text: "chat" });
      b.addEventListener("click", () => { $("chat-target").value = c; $("chat-input").focus(); });
      return el("li", {}, el("code", { text: c }), " ", b);
    }));
  }
}

function selectJob(id) {
  if (state.events) state.events.close();
  state.job = id;
  state.logOffset = 0; state.metricOffset = 0; state.metrics = []; state.rawLog = "";
  $("job").hidden = false;
  $("job-title").textContent = id;
  $("log").textContent = "";
  drawChart();
  for (const tr of document.querySelectorAll("#jobs-table tr[data-job]")) tr.classList.toggle("selected", tr.dataset.job === id);
  listen();
}

function listen() {
  // EventSource reconnects by itself to the same URL; we reopen with our offsets instead, so a
  // reconnect (or a restarted server) neither repeats nor loses log text and metrics.
  const id = state.job;
  const src = new EventSource(`/api/jobs/${id}/events?log_offset=${state.logOffset}&metric_offset=${state.metricOffset}`);
  state.events = src;
  src.onopen = () => { $("conn").textContent = "connected"; };
  src.addEventListener("log", (e) => {
    const d = JSON.parse(e.data);
    const log = $("log");
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    state.rawLog += d.text;
    log.textContent = asTerminal(state.rawLog);
    state.logOffset = d.offset;
    if (atEnd) log.scrollTop = log.scrollHeight;
  });
  src.addEventListener("metric", (e) => {
    const d = JSON.parse(e.data);
    state.metrics.push(...d.rows);
    state.metricOffset = d.offset;
    drawChart();
  });
  src.addEventListener("status", (e) => { setStatus(JSON.parse(e.data)); refreshJobs(); });
  src.addEventListener("end", () => { src.close(); refreshJobs(); });
  src.onerror = () => {
    src.close();
    $("conn").textContent = "reconnecting…";
    if (state.job === id) setTimeout(() => { if (state.job === id) listen(); }, 1000);
  };
}

function asTerminal(text) {
  // A progress bar redraws its line with \r: show each line as a terminal would, last draw only.
  return text.split("\n").map((line) => line.slice(line.lastIndexOf("\r") + 1)).join("\n");
}

function metricKeys() {
  const keys = new Set();
  for (const row of state.metrics) for (const [k, v] of Object.entries(row)) {
    if (typeof v === "number" && !["step", "epoch"].includes(k)) keys.add(k);
  }
  return [...keys].sort();
}

function drawChart() {
  const select = $("metric-key");
  const keys = metricKeys();
  const current = select.value || (keys.includes("loss") ? "loss" : keys[0]);
  select.replaceChildren(...keys.map((k) => el("option", { value: k, text: k })));
  if (current) select.value = current;
  const svg = $("loss-chart");
  svg.replaceChildren();
  const pts = state.metrics.filter((r) => typeof r[current] === "number").map((r, i) => [r.step ?? i, r[current]]);
  svg.dataset.points = String(pts.length);
  $("chart-caption").textContent = pts.length ? `${current}: ${pts.length} points, last ${pts[pts.length - 1][1].toPrecision(4)}` : "no metrics yet";
  if (!pts.length) return;
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x) => 30 + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * 560;
  const sy = (y) => 200 - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * 180;
  const ns = "http://www.w3.org/2000/svg";
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", pts.map((p) => `${sx(p[0])},${sy(p[1])}`).join(" "));
  line.setAttribute("fill", "none"); line.setAttribute("stroke", "#23395d"); line.setAttribute("stroke-width", "2");
  line.setAttribute("id", "loss-line");
  svg.append(line);
  for (const [y, label] of [[y1, y1], [y0, y0]]) {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", "2"); t.setAttribute("y", String(sy(y) + 4)); t.setAttribute("font-size", "10");
    t.textContent = Number(label).toPrecision(3);
    svg.append(t);
  }
}

// -- chat -------------------------------------------------------------------------------------

const history = [];

async function sendChat() {
  const text = $("chat-input").value.trim();
  const target = $("chat-target").value.trim();
  if (!text || !target) { $("chat-error").textContent = "pick a checkpoint (or a model) and write a message"; return; }
  $("chat-error").textContent = "";
  $("chat-input").value = "";
  history.push({ role: "user", content: text });
  $("chat-history").append(el("div", { class: "msg user", text }));
  const reply = el("div", { class: "msg assistant pending" });
  $("chat-history").append(reply);
  $("chat-send").disabled = true;
  try {
    const resp = await fetch("/api/chat", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ target, messages: history, max_tokens: 48, temperature: 0 }) });
    if (!resp.ok) throw new Error((await resp.json().catch(() => ({}))).error || resp.statusText);
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        const event = (frame.match(/^event: (.*)$/m) || [])[1];
        const data = JSON.parse((frame.match(/^data: (.*)$/m) || [, "{}"])[1]);
        if (event === "delta") reply.textContent += data.text;
        if (event === "error") throw new Error(data.error);
      }
    }
    history.push({ role: "assistant", content: reply.textContent });
  } catch (e) {
    history.pop();
    $("chat-error").textContent = e.message;
  } finally {
    reply.classList.remove("pending");
    reply.classList.add("done");
    $("chat-send").disabled = false;
  }
}

// -- start --------------------------------------------------------------------------------------

async function main() {
  const { commands, choices } = await api("/api/commands");
  state.choices = choices;
  $("command").replaceChildren(...commands.map((c) => el("option", { value: c, text: c })));
  $("command").addEventListener("change", (e) => loadCommand(e.target.value));
  $("start").addEventListener("click", startJob);
  $("stop").addEventListener("click", async () => { try { setStatus(await api(`/api/jobs/${state.job}/stop`, { method: "POST" })); } catch (e) { alert(e.message); } });
  $("resume").addEventListener("click", async () => { try { await api(`/api/jobs/${state.job}/resume`, { method: "POST" }); selectJob(state.job); } catch (e) { alert(e.message); } });
  $("metric-key").addEventListener("change", drawChart);
  $("chat-send").addEventListener("click", sendChat);
  $("chat-input").addEventListener("keydown", (e) => { if (e.key === "Enter") sendChat(); });
  await loadCommand(commands[0]);
  await refreshJobs();
  $("conn").textContent = "connected";
  document.body.dataset.ready = "true";  // the form is rendered: typing into it now sticks
  setInterval(refreshJobs, 5000);
}

main().catch((e) => { $("conn").textContent = `error: ${e.message}`; });
