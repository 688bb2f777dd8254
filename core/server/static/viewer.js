// petrel viewer: NiiVue (vendored from the npm package @niivue/niivue, served by this server as
// /vendor/niivue.js) in two panes with linked cursors: three planes each, a PET colour map over an
// optional MR underlay, a colour bar and a shared globalThis. Results are fetched with the token
// (app.js's api) and handed to NiiVue as buffers, so no URL carries the token and nothing is
// fetched from anywhere but this server.
// Imported through a variable: the browser resolves it on this server; `deno check` of core/
// does not try to resolve a path that only exists there.
const NIIVUE = "/vendor/niivue.js";
const { MULTIPLANAR_TYPE, Niivue, NVImage, SHOW_RENDER, SLICE_TYPE } = await import(NIIVUE);

const $ = (id) => document.getElementById(id);
const api = (path, init) => globalThis.petrelApi(path, init);
const isNifti = (p) => /\.nii(\.gz)?$/i.test(p);

/** Known NIfTI results: key "<job>/<path>" → {job, path, label, units}. */
const sources = new Map();
/** Fetched volumes: key → ArrayBuffer (copied for each use: NiiVue may keep or detach it). */
const buffers = new Map();
const jobsSeen = new Set();
const panes = {};
const chosen = { a: "", b: "", mr: "" };
let ready = null;

function key(job, path) {
  return `${job}/${path}`;
}

async function makePane(id) {
  const nv = new Niivue({
    backColor: [0, 0, 0, 1],
    crosshairColor: [0.3, 0.85, 1, 0.7],
    isColorbar: true,
    multiplanarShowRender: SHOW_RENDER.NEVER,
    multiplanarLayout: MULTIPLANAR_TYPE.ROW,
    show3Dcrosshair: false,
    isResizeCanvas: true,
    logLevel: "error",
  });
  await nv.attachToCanvas($(id));
  nv.setSliceType(SLICE_TYPE.MULTIPLANAR);
  nv.onLocationChange = (loc) => {
    $(`${id}-loc`).textContent = loc && loc.string ? `cursor (mm) = values: ${loc.string}` : "";
  };
  return nv;
}

function init() {
  ready ??= (async () => {
    $("nv").hidden = false;
    panes.a = await makePane("nv-a");
    panes.b = await makePane("nv-b");
    // Linked cursors: each pane moves the other's crosshair (and zoom/pan).
    panes.a.broadcastTo(panes.b, { "2d": true, "3d": true });
    panes.b.broadcastTo(panes.a, { "2d": true, "3d": true });
    for (const pane of ["a", "b"]) {
      $(`nv-${pane}-src`).addEventListener("change", (ev) => {
        chosen[pane] = ev.target.value;
        redraw(pane).catch(report);
      });
    }
    $("nv-mr").addEventListener("change", (ev) => {
      chosen.mr = ev.target.value;
      Promise.all([redraw("a"), redraw("b")]).catch(report);
    });
    $("nv-cmap").addEventListener("change", () => {
      for (const nv of Object.values(panes)) {
        const pet = petVolume(nv);
        if (pet) {
          pet.colormap = $("nv-cmap").value;
          nv.updateGLVolume();
        }
      }
    });
    for (const id of ["nv-min", "nv-max"]) $(id).addEventListener("change", applyWindow);
  })();
  return ready;
}

function report(e) {
  $("nv-error").textContent = String((e && e.message) || e);
}

async function buffer(k) {
  let b = buffers.get(k);
  if (!b) {
    const s = sources.get(k);
    b = await (await api(globalThis.petrelFileUrl(s.job, s.path))).arrayBuffer();
    buffers.set(k, b);
  }
  return b.slice(0);
}

async function volume(k, colormap, opacity) {
  const s = sources.get(k);
  return await NVImage.loadFromUrl({
    url: s.path,
    name: s.path.split("/").pop(),
    buffer: await buffer(k),
    colormap,
    opacity,
  });
}

function petVolume(nv) {
  return nv.volumes.find((v) => v.petrelRole === "pet");
}

/** The pane's volumes: the MR underlay (grey, no colour bar) and the result on top. */
async function redraw(pane) {
  const nv = panes[pane];
  const k = chosen[pane];
  while (nv.volumes.length) nv.removeVolume(nv.volumes[0]);
  const src = k ? sources.get(k) : null;
  $(`nv-${pane}-title`).textContent = src
    ? `${src.label}${src.units ? ` (${src.units})` : ""}`
    : "(nothing shown)";
  if (!k) {
    nv.drawScene();
    return;
  }
  if (chosen.mr) {
    const mr = await volume(chosen.mr, "gray", 1);
    mr.petrelRole = "mr";
    mr.colorbarVisible = false;
    nv.addVolume(mr);
  }
  const pet = await volume(k, $("nv-cmap").value, chosen.mr ? 0.7 : 1);
  pet.petrelRole = "pet";
  nv.addVolume(pet);
  sharedWindow();
  $("nv-units").textContent = sources.get(k).units ? `(${sources.get(k).units})` : "";
}

/** One window for both results, so the colours compare; starts from NiiVue's robust ranges. */
function sharedWindow() {
  const pets = Object.values(panes).map(petVolume).filter(Boolean);
  if (!pets.length) return;
  const lo = Math.min(...pets.map((v) => v.cal_min));
  const hi = Math.max(...pets.map((v) => v.cal_max));
  $("nv-min").value = String(Number(lo.toPrecision(4)));
  $("nv-max").value = String(Number(hi.toPrecision(4)));
  applyWindow();
}

function applyWindow() {
  const lo = Number($("nv-min").value), hi = Number($("nv-max").value);
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) {
    report("the window needs two numbers, the first below the second");
    return;
  }
  $("nv-error").textContent = "";
  for (const nv of Object.values(panes)) {
    const pet = petVolume(nv);
    if (!pet) continue;
    pet.cal_min = lo;
    pet.cal_max = hi;
    nv.updateGLVolume();
  }
}

function fillSelects() {
  const entries = [...sources.entries()];
  for (const [id, what] of [["nv-a-src", "a"], ["nv-b-src", "b"], ["nv-mr", "mr"]]) {
    const sel = $(id);
    sel.replaceChildren(new Option("(none)", ""));
    for (const [k, s] of entries) sel.add(new Option(s.label, k));
    sel.value = chosen[what];
  }
}

async function unitsOf(job, files) {
  if (!files.some((f) => f.path === "metrics.json")) return "";
  try {
    const m = await (await api(globalThis.petrelFileUrl(job, "metrics.json"))).json();
    return typeof m.units === "string" ? m.units : "";
  } catch {
    return "";
  }
}

/** Registers a job's NIfTI results (called by app.js when it lists a job's files). */
async function addJob(job, files, recipe) {
  if (jobsSeen.has(job)) return;
  jobsSeen.add(job);
  const units = await unitsOf(job, files);
  for (const f of files.filter((f) => isNifti(f.path))) {
    const label = `${recipe ? `${recipe} ` : ""}${job.slice(0, 8)}: ${f.path}`;
    sources.set(key(job, f.path), { job, path: f.path, label, units });
  }
  if (ready) fillSelects();
}

/** Adds the results of the user's other finished jobs, for comparisons across jobs. */
async function addOtherJobs() {
  const { jobs } = await (await api("/api/jobs?limit=20")).json();
  for (const j of jobs) {
    if (j.state !== "succeeded" || jobsSeen.has(j.id)) continue;
    const { files } = await (await api(`/api/jobs/${j.id}/files`)).json();
    await addJob(j.id, files, j.recipe);
  }
}

/** Shows `path` of `job` in pane "a" (left) or "b" (right). */
async function show(job, path, pane) {
  await init();
  await addOtherJobs();
  const k = key(job, path);
  if (!sources.has(k)) throw new Error(`${path} is not a NIfTI result of job ${job}`);
  chosen[pane] = k;
  // An MR of the same job (e.g. `petrel simulate`'s mr.nii) becomes the underlay by default.
  if (!chosen.mr) {
    const mr = [...sources.keys()].find((s) => /(^|\/)mr\.nii(\.gz)?$/i.test(s) && s !== k);
    if (mr) chosen.mr = mr;
  }
  fillSelects();
  if (chosen.mr) {
    await Promise.all(["a", "b"].filter((p) => chosen[p]).map(redraw));
  } else {
    await redraw(pane);
  }
  $("nv").scrollIntoView({ block: "nearest" });
}

globalThis.petrelViewer = { show, addJob };
// For tests and the console: the two NiiVue instances.
globalThis.petrelViewers = panes;
