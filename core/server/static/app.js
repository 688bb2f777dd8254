// petrel serve web page: log in with a token, submit jobs, watch their log and progress, and view
// results (PNG images inline, NIfTI volumes in the NiiVue viewer of viewer.js — or slice by slice
// on a plain canvas where WebGL2 is missing —, other files as downloads).
// Plain browser JavaScript, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
let token = sessionStorage.getItem("petrel-token") || "";
let current = null; // id of the job shown
let watchGen = 0; // bumps to stop an older log watcher
const blobUrls = [];

async function api(path, init = {}) {
  const headers = new Headers(init.headers || {});
  headers.set("authorization", `Bearer ${token}`);
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401) {
    logout("The token was not accepted.");
    throw new Error("not authenticated");
  }
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try {
      msg = (await res.json()).error || msg;
    } catch { /* not JSON */ }
    throw new Error(msg);
  }
  return res;
}

function logout(message) {
  token = "";
  sessionStorage.removeItem("petrel-token");
  current = null;
  watchGen++;
  $("app-view").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login-view").hidden = false;
  $("login-error").textContent = message || "";
}

async function login(t) {
  token = t;
  try {
    const me = await (await api("/api/me")).json();
    sessionStorage.setItem("petrel-token", token);
    $("who").textContent = `logged in as ${me.user}`;
    $("login-view").hidden = true;
    $("app-view").hidden = false;
    $("logout").hidden = false;
    $("recipe-file").disabled = !me.allowUploadedRecipes;
    await loadChoices();
    await refreshJobs();
  } catch (e) {
    if (token) logout(String(e.message || e));
  }
}

async function loadChoices() {
  const { recipes } = await (await api("/api/recipes")).json();
  const sel = $("recipe");
  sel.replaceChildren(new Option("(uploaded recipe)", ""));
  for (const r of recipes) sel.add(new Option(r, r));
  if (recipes.length) sel.value = recipes[0];
  sel.onchange = () => describe(sel.value);
  describe(sel.value);
  const { datasets } = await (await api("/api/datasets")).json();
  const fs = $("datasets");
  fs.querySelectorAll("label").forEach((l) => l.remove());
  for (const d of datasets) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = d;
    label.append(box, ` ${d}`);
    fs.append(label);
  }
  fs.hidden = datasets.length === 0;
}

// Shows the chosen recipe's description and parameters, and fills in their defaults.
let prefilled = "{}";
async function describe(name) {
  $("recipe-info").textContent = "";
  if (!name) return;
  try {
    const info = await (await api(`/api/recipes/${encodeURIComponent(name)}`)).json();
    if ($("recipe").value !== name) return;
    const props = (info.params && info.params.properties) || {};
    const lines = Object.entries(props).map(([k, p]) =>
      `${k}${p.type ? ` (${p.type})` : ""}${
        p.default !== undefined ? ` = ${JSON.stringify(p.default)}` : ""
      }${p.description ? `: ${p.description}` : ""}`
    );
    $("recipe-info").textContent = [info.description || "", ...lines].filter((l) => l).join("\n");
    const defaults = {};
    for (const [k, p] of Object.entries(props)) {
      if (p.default !== undefined) defaults[k] = p.default;
    }
    if ($("params").value.trim() === prefilled) {
      prefilled = JSON.stringify(defaults);
      $("params").value = prefilled;
    }
  } catch (e) {
    $("recipe-info").textContent = `(no description: ${e.message || e})`;
  }
}

function fmtProgress(p) {
  return p.total > 0 ? `${Math.round((100 * p.done) / p.total)} %` : "";
}

async function refreshJobs() {
  const { jobs } = await (await api("/api/jobs")).json();
  const body = $("jobs").tBodies[0];
  body.replaceChildren();
  for (const j of jobs) {
    const tr = body.insertRow();
    tr.dataset.id = j.id;
    if (j.id === current) tr.classList.add("selected");
    tr.insertCell().textContent = new Date(j.createdAt).toLocaleString();
    tr.insertCell().textContent = j.recipe;
    const st = tr.insertCell();
    st.textContent = j.state;
    st.className = `state state-${j.state}`;
    tr.insertCell().textContent = fmtProgress(j.progress);
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = "Show";
    b.className = "show";
    b.addEventListener("click", () => showJob(j.id));
    tr.insertCell().append(b);
  }
}

function renderJob(j) {
  $("job-state").textContent = j.state;
  $("job-state").className = `state state-${j.state}`;
  $("job-progress").value = j.progress.total > 0 ? j.progress.done / j.progress.total : 0;
  $("job-error").textContent = j.error ? `${j.reason}: ${j.error}` : "";
  $("cancel").disabled = TERMINAL.has(j.state);
}

async function showJob(id) {
  current = id;
  const gen = ++watchGen;
  $("job-view").hidden = false;
  $("job-id").textContent = id;
  $("job-log").textContent = "";
  $("job-files").replaceChildren();
  $("job-images").replaceChildren();
  $("job-metrics").replaceChildren();
  $("job-metrics").hidden = true;
  $("viewer").hidden = true;
  for (const u of blobUrls.splice(0)) URL.revokeObjectURL(u);
  let after = 0;
  let refreshed = "";
  while (gen === watchGen) {
    let r;
    try {
      r = await (await api(`/api/jobs/${id}/log?after=${after}&wait=10000`)).json();
    } catch (e) {
      $("job-error").textContent = String(e.message || e);
      return;
    }
    if (gen !== watchGen) return;
    for (const l of r.lines) $("job-log").textContent += `${l.line}\n`;
    $("job-log").scrollTop = $("job-log").scrollHeight;
    after = r.next;
    renderJob(r.job);
    if (refreshed !== r.state) {
      refreshed = r.state;
      refreshJobs().catch(() => {});
    }
    if (TERMINAL.has(r.state) && r.lines.length === 0) break;
  }
  if (gen === watchGen) await showResults(id, gen);
}

async function showResults(id, gen) {
  const { files } = await (await api(`/api/jobs/${id}/files`)).json();
  if (gen !== watchGen) return;
  const list = $("job-files");
  for (const f of files) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = "#";
    a.textContent = `${f.path} (${f.size} bytes)`;
    a.addEventListener("click", async (ev) => {
      ev.preventDefault();
      const blob = await (await api(fileUrl(id, f.path))).blob();
      const u = URL.createObjectURL(blob);
      blobUrls.push(u);
      const dl = document.createElement("a");
      dl.href = u;
      dl.download = f.path.split("/").pop();
      dl.click();
    });
    li.append(a);
    if (/\.nii(\.gz)?$/i.test(f.path)) {
      for (const [pane, label] of [["a", "View"], ["b", "Compare"]]) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = `view nv-${pane}`;
        b.textContent = label;
        b.addEventListener("click", () => {
          if (!globalThis.petrelViewer) {
            $("job-error").textContent = "the viewer did not load (it needs WebGL2)";
            return;
          }
          globalThis.petrelViewer.show(id, f.path, pane).catch((e) => {
            $("job-error").textContent = `cannot show ${f.path}: ${e.message || e}`;
          });
        });
        li.append(b);
      }
      const v = document.createElement("button");
      v.type = "button";
      v.className = "view slices";
      v.textContent = "Slices";
      v.addEventListener("click", () =>
        viewNifti(id, f.path).catch((e) => {
          $("job-error").textContent = `cannot show ${f.path}: ${e.message || e}`;
        }));
      li.append(v);
    }
    list.append(li);
  }
  if (globalThis.petrelViewer) globalThis.petrelViewer.addJob(id, files);
  if (files.some((f) => f.path === "metrics.json")) {
    showMetrics(await (await api(fileUrl(id, "metrics.json"))).json());
  }
  for (const f of files.filter((f) => /\.png$/i.test(f.path))) {
    const blob = await (await api(fileUrl(id, f.path))).blob();
    if (gen !== watchGen) return;
    const u = URL.createObjectURL(blob);
    blobUrls.push(u);
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = u;
    img.alt = f.path;
    const cap = document.createElement("figcaption");
    cap.textContent = f.path;
    fig.append(img, cap);
    $("job-images").append(fig);
  }
}

// The figures of a recon recipe's metrics.json (core/metrics/report.ts) as a small table.
function showMetrics(m) {
  const num = (v, d) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(d) : "–");
  const rows = [];
  if (m.method) rows.push(["method", m.method]);
  if (typeof m.logLikelihood === "number") {
    rows.push(["log-likelihood", m.logLikelihood.toExponential(6)]);
  }
  const r = m.reference;
  if (r && typeof r === "object") {
    rows.push([`PSNR vs ${r.name}`, `${num(r.psnrDb, 2)} dB`]);
    rows.push([`SSIM vs ${r.name}`, num(r.ssim, 4)]);
    rows.push([`NRMSE vs ${r.name}`, num(r.nrmse, 4)]);
  } else if (m.referenceNote) rows.push(["reference", m.referenceNote]);
  if (m.units) rows.push(["units", m.units]);
  const t = $("job-metrics");
  for (const [k, v] of rows) {
    const tr = t.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = String(v);
  }
  t.hidden = rows.length === 0;
}

// A tiny NIfTI-1 viewer: axial slices (k) of a 3D volume, grey scale over the volume's range.
const NIFTI_TYPES = {
  2: ["getUint8", 1],
  4: ["getInt16", 2],
  8: ["getInt32", 4],
  16: ["getFloat32", 4],
  64: ["getFloat64", 8],
  256: ["getInt8", 1],
  512: ["getUint16", 2],
  768: ["getUint32", 4],
};

async function parseNifti(buf) {
  let bytes = new Uint8Array(buf);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let le = true;
  if (dv.getInt32(0, true) !== 348) {
    if (dv.getInt32(0, false) !== 348) {
      throw new Error("not a NIfTI-1 file (header size is not 348)");
    }
    le = false;
  }
  const ndim = dv.getInt16(40, le);
  const dims = [1, 2, 3].map((i) => (i <= ndim ? Math.max(1, dv.getInt16(40 + 2 * i, le)) : 1));
  const type = NIFTI_TYPES[dv.getInt16(70, le)];
  if (!type) throw new Error(`unsupported NIfTI data type ${dv.getInt16(70, le)}`);
  const offset = Math.max(352, Math.round(dv.getFloat32(108, le)));
  let slope = dv.getFloat32(112, le);
  const inter = dv.getFloat32(116, le);
  if (!slope) slope = 1;
  const n = dims[0] * dims[1] * dims[2];
  if (offset + n * type[1] > bytes.length) {
    throw new Error("the NIfTI file is shorter than its header says");
  }
  const data = new Float32Array(n);
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = dv[type[0]](offset + i * type[1], le) * slope + inter;
    data[i] = v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { dims, data, min, max };
}

function drawSlice(vol, k) {
  const [nx, ny] = vol.dims;
  const canvas = $("viewer-canvas");
  canvas.width = nx;
  canvas.height = ny;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(nx, ny);
  const span = vol.max > vol.min ? vol.max - vol.min : 1;
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const v = vol.data[i + nx * (j + ny * k)];
      const g = Math.round((255 * (v - vol.min)) / span);
      const o = 4 * (i + nx * (ny - 1 - j)); // j grows upwards (anterior) on screen
      img.data[o] = img.data[o + 1] = img.data[o + 2] = g;
      img.data[o + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
  $("viewer-index").textContent = `${k + 1} / ${vol.dims[2]}`;
}

async function viewNifti(id, path) {
  const vol = await parseNifti(await (await api(fileUrl(id, path))).arrayBuffer());
  $("viewer").hidden = false;
  $("viewer-name").textContent = path;
  $("viewer-info").textContent = `${vol.dims.join(" × ")} voxels, values ${
    vol.min.toPrecision(4)
  } … ${vol.max.toPrecision(4)}`;
  const slider = $("viewer-slice");
  slider.max = String(vol.dims[2] - 1);
  slider.value = String(Math.floor(vol.dims[2] / 2));
  slider.oninput = () => drawSlice(vol, Number(slider.value));
  drawSlice(vol, Number(slider.value));
}

// For viewer.js (a module loaded after this script).
globalThis.petrelApi = (path, init) => api(path, init);
globalThis.petrelFileUrl = (id, path) => fileUrl(id, path);

function fileUrl(id, path) {
  return `/api/jobs/${id}/files/${path.split("/").map(encodeURIComponent).join("/")}`;
}

async function submit(ev) {
  ev.preventDefault();
  $("submit-error").textContent = "";
  const form = new FormData();
  const file = $("recipe-file").files[0];
  if (file) form.append("recipeFile", file, file.name);
  else if ($("recipe").value) form.append("recipe", $("recipe").value);
  form.append("params", $("params").value || "{}");
  if ($("seed").value !== "") form.append("seed", $("seed").value);
  for (const f of $("inputs").files) form.append("inputs", f, f.name);
  for (const box of $("datasets").querySelectorAll("input:checked")) {
    form.append("datasets", box.value);
  }
  try {
    const job = await (await api("/api/jobs", { method: "POST", body: form })).json();
    $("recipe-file").value = "";
    $("inputs").value = "";
    await refreshJobs();
    showJob(job.id);
  } catch (e) {
    $("submit-error").textContent = String(e.message || e);
  }
}

async function cancel() {
  if (!current) return;
  try {
    renderJob(await (await api(`/api/jobs/${current}/cancel`, { method: "POST" })).json());
    await refreshJobs();
  } catch (e) {
    $("job-error").textContent = String(e.message || e);
  }
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  login($("token").value.trim());
});
$("logout").addEventListener("click", () => logout(""));
$("submit-form").addEventListener("submit", submit);
$("refresh").addEventListener("click", () => refreshJobs().catch(() => {}));
$("cancel").addEventListener("click", cancel);
if (token) login(token);
