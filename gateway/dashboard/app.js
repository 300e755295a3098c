// Conveyor's operators' dashboard: signs in with a client credential, then
// polls the admin API every 2 s and redraws.  No framework, no CDN.
"use strict";

const POLL_MS = 2000;
const TOKEN_KEY = "conveyor-dashboard-token";
let timer = null;

const $ = (selector) => document.querySelector(selector);

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function row(cells) {
  const tr = document.createElement("tr");
  cells.forEach((c) => tr.appendChild(c instanceof Node ? c : cell(c)));
  return tr;
}

function fill(tableSelector, rows) {
  const body = $(tableSelector + " tbody");
  body.replaceChildren(...rows);
}

function when(iso) { return iso ? new Date(iso).toLocaleTimeString() : ""; }

function progressCell(done, total) {
  const percent = total ? Math.round((100 * done) / total) : 0;
  const td = document.createElement("td");
  const wrapper = document.createElement("div");
  wrapper.className = "progress";
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.dataset.percent = String(percent);
  const fillDiv = document.createElement("div");
  fillDiv.style.width = percent + "%";
  bar.appendChild(fillDiv);
  const label = document.createElement("span");
  label.className = "bar-label";
  label.textContent = `${done}/${total} (${percent}%)`;
  wrapper.append(bar, label);
  td.appendChild(wrapper);
  return td;
}

function statusCell(status) { return cell(status, "status " + status); }

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: "Bearer " + token() } });
  if (response.status === 401 || response.status === 403) {
    signOut(response.status === 403 ? "this credential has no admin scope" : "your session ended; sign in again");
    throw new Error("signed out");
  }
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function chart(svgSelector, values, maxSelector) {
  const svg = $(svgSelector);
  const max = Math.max(1, ...values);
  const step = 300 / Math.max(1, values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(78 - (v / max) * 74).toFixed(1)}`).join(" ");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points);
  svg.replaceChildren(line);
  $(maxSelector).textContent = String(Math.max(0, ...values));
}

function drawOverview(data) {
  fill("#batches", data.batches.map((b) => {
    const link = document.createElement("a");
    link.href = "#/batch/" + b.id;
    link.textContent = b.id.slice(0, 8);
    const first = document.createElement("td");
    first.appendChild(link);
    const tr = row([first, b.client, b.tier, statusCell(b.status), progressCell(b.succeeded + b.failed + b.cancelled, b.total), when(b.created_at)]);
    tr.className = "batch-row";
    tr.dataset.id = b.id;
    return tr;
  }));
  fill("#queues", data.queues.map((q) => row([q.queue, q.ready, q.unacked ?? "?", q.consumers, q.arrived_per_minute, q.ended_per_minute])));
  $("#workers-summary").textContent = `${data.workers.workers.length} live, ${data.workers.jobs_in_progress} jobs in progress`;
  fill("#workers", data.workers.workers.map((w) => row([w.worker_id, w.jobs_in_progress, when(w.last_seen_at)])));
  fill("#tiers", Object.entries(data.tiers).map(([tier, u]) => row([tier, u.pending, u.running, u.ended_last_hour])));
  fill("#failures", data.failures.map((f) => row([f.filename, cell(f.error, "error"), when(f.finished_at)])));
  const ended = data.last_hour.map((m) => m.finished);
  const openNow = Object.values(data.tiers).reduce((sum, u) => sum + u.pending + u.running, 0);
  // Backlog per minute, walked back from now: each minute's arrivals were added, its endings removed.
  const backlog = new Array(data.last_hour.length).fill(0);
  let level = openNow;
  for (let i = data.last_hour.length - 1; i >= 0; i--) {
    backlog[i] = Math.max(0, level);
    level = level - data.last_hour[i].arrived + data.last_hour[i].finished;
  }
  chart("#throughput-chart", ended, "#throughput-max");
  chart("#backlog-chart", backlog, "#backlog-max");
}

function drawBatch(data) {
  const b = data.batch;
  const done = b.counts.succeeded + b.counts.failed + b.counts.cancelled;
  const percent = b.counts.total ? Math.round((100 * done) / b.counts.total) : 0;
  $("#batch-id").textContent = b.id;
  $("#batch-status").textContent = b.status;
  $("#batch-status").className = "status " + b.status;
  $("#batch-counts").textContent = `${done}/${b.counts.total} jobs done (${percent}%): ${b.counts.succeeded} succeeded, ${b.counts.failed} failed, ${b.counts.cancelled} cancelled`;
  $("#batch-bar").style.width = percent + "%";
  $("#batch-bar").parentElement.dataset.percent = String(percent);
  fill("#jobs", data.jobs.map((j) => row([j.position, j.filename, j.pipeline, statusCell(j.state), j.attempts, cell(j.error, "error")])));
}

function show(section) {
  for (const id of ["signin", "overview", "batch-page"]) $("#" + id).hidden = id !== section;
  $("#sign-out").hidden = section === "signin";
}

async function refresh() {
  if (!token()) { show("signin"); return; }
  const match = location.hash.match(/^#\/batch\/(.+)$/);
  try {
    if (match) {
      drawBatch(await api("/api/v1/admin/batches/" + encodeURIComponent(match[1])));
      show("batch-page");
    } else {
      const status = $("#status-filter").value;
      drawOverview(await api("/api/v1/admin/dashboard" + (status ? "?status=" + status : "")));
      show("overview");
    }
    $("#updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (error) {
    $("#updated").textContent = "update failed: " + error.message;
  }
}

function start() {
  clearInterval(timer);
  refresh();
  timer = setInterval(refresh, POLL_MS);
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(timer);
  $("#signin-error").textContent = message || "";
  show("signin");
}

async function signIn(event) {
  event.preventDefault();
  const body = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: $("#client-id").value,
    client_secret: $("#client-secret").value,
  });
  const response = await fetch("/api/v1/auth/token", { method: "POST", body });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) { $("#signin-error").textContent = answer.detail || "sign-in failed"; return; }
  if (!(answer.scope || "").split(" ").includes("admin")) {
    $("#signin-error").textContent = "this credential has no admin scope";
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, answer.access_token);
  $("#signin-error").textContent = "";
  start();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#signin-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", () => signOut(""));
  $("#status-filter").addEventListener("change", refresh);
  window.addEventListener("hashchange", refresh);
  start();
});
