/**
 * The operating-system layers under Deno's permissions: a bubblewrap sandbox (own mount, PID,
 * network, IPC, UTS and user namespaces; uid 65534; a file system holding only the run's paths),
 * kernel limits (cgroup `memory` and `pids` controllers, else `ulimit -d`), and the per-file size
 * cap (`ulimit -f`). What the host offers is probed once per process; a missing layer is
 * reported once on stderr and recorded in every manifest.
 *
 * Everything that touches `/proc` or `/sys` runs in `/bin/sh`: Deno asks for `--allow-all` to
 * read those, and the CLI is documented to run without it.
 *
 * @module
 */

/** Which OS layers a run gets on this host. */
export interface Containment {
  /** "bwrap" (bubblewrap namespaces) or null (Deno's permissions only). */
  namespaces: "bwrap" | null;
  /** How memory is capped by the kernel: a cgroup, `ulimit -d` (RLIMIT_DATA), or not at all. */
  memory: "cgroup-v1" | "cgroup-v2" | "rlimit" | null;
  /** How processes and threads are capped: a cgroup `pids` controller, or not at all. */
  processes: "cgroup-v1" | "cgroup-v2" | null;
  /** One sentence per missing layer (empty when every layer is present). */
  missing: string[];
}

/** What the probe found (absolute cgroup folders under which each run gets its own). */
interface HostProbe {
  shell: boolean;
  bwrap: string | null;
  memoryCgroup: { dir: string; version: 1 | 2 } | null;
  pidsCgroup: { dir: string; version: 1 | 2 } | null;
  gpuDevices: string[];
  containment: Containment;
}

const SH = "/bin/sh";

// Finds each controller's cgroup of this process, checks that a child cgroup can be created
// there (v2: that the controller is delegated to children), and lists GPU device nodes.
const PROBE_SCRIPT = `
own() { sed -n "s/^[0-9]*:\\([^:]*,\\)\\{0,1\\}$1\\(,[^:]*\\)\\{0,1\\}:\\(.*\\)$/\\3/p" /proc/self/cgroup | head -n 1; }
try() { d="$1/petrel-probe-$$"; mkdir "$d" 2>/dev/null && rmdir "$d" && echo "$2 $1"; }
for c in memory pids; do
  p=$(own "$c")
  if [ -n "$p" ] && [ -d "/sys/fs/cgroup/$c" ]; then
    try "/sys/fs/cgroup/$c\${p%/}" "$c-v1"
  else
    p2=$(sed -n 's/^0::\\(.*\\)$/\\1/p' /proc/self/cgroup)
    d="/sys/fs/cgroup\${p2%/}"
    if [ -n "$p2" ] && grep -qw "$c" "$d/cgroup.subtree_control" 2>/dev/null; then try "$d" "$c-v2"; fi
  fi
done
for f in /dev/dri /dev/nvidia* /dev/kfd; do [ -e "$f" ] && echo "dev $f"; done
for b in /usr/bin/bwrap /bin/bwrap /usr/local/bin/bwrap; do [ -x "$b" ] && { echo "bwrap $b"; break; }; done
exit 0
`;

function canRun(command: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "run", command }).state === "granted";
  } catch {
    return false;
  }
}

async function sh(script: string, args: string[] = []): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(SH, {
    args: ["-c", script, "sh", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin:/usr/sbin:/sbin" },
  }).output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout) };
}

/** Names of the layers that `PETREL_SANDBOX_DISABLE` (comma-separated) turns off, for tests. */
function disabledLayers(): Set<string> {
  try {
    return new Set((Deno.env.get("PETREL_SANDBOX_DISABLE") ?? "").split(",").filter(Boolean));
  } catch {
    return new Set();
  }
}

async function bwrapWorks(bwrap: string): Promise<boolean> {
  // The same namespace options a run uses, on a command that needs nothing but /usr.
  try {
    const r = await new Deno.Command(bwrap, {
      args: [
        ...BWRAP_NAMESPACES,
        "--ro-bind",
        "/usr",
        "/usr",
        ...systemLinks(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "/usr/bin/true",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
      clearEnv: true,
    }).output();
    return r.code === 0;
  } catch {
    return false;
  }
}

async function probeHost(): Promise<HostProbe> {
  const off = disabledLayers();
  const probe: HostProbe = {
    shell: false,
    bwrap: null,
    memoryCgroup: null,
    pidsCgroup: null,
    gpuDevices: [],
    containment: { namespaces: null, memory: null, processes: null, missing: [] },
  };
  let shellOk = false;
  try {
    Deno.statSync(SH);
    shellOk = canRun(SH);
  } catch {
    shellOk = false;
  }
  if (shellOk) {
    try {
      const { out } = await sh(PROBE_SCRIPT);
      probe.shell = true;
      for (const line of out.split("\n")) {
        const [key, value] = [line.slice(0, line.indexOf(" ")), line.slice(line.indexOf(" ") + 1)];
        if (key === "memory-v1" || key === "memory-v2") {
          probe.memoryCgroup = { dir: value, version: key.endsWith("1") ? 1 : 2 };
        } else if (key === "pids-v1" || key === "pids-v2") {
          probe.pidsCgroup = { dir: value, version: key.endsWith("1") ? 1 : 2 };
        } else if (key === "dev") probe.gpuDevices.push(value);
        else if (key === "bwrap") probe.bwrap = value;
      }
    } catch {
      probe.shell = false;
    }
  }
  if (off.has("cgroup")) probe.memoryCgroup = probe.pidsCgroup = null;
  if (off.has("bwrap")) probe.bwrap = null;
  if (probe.bwrap && !(canRun(probe.bwrap) && await bwrapWorks(probe.bwrap))) probe.bwrap = null;
  const c = probe.containment;
  const missing = c.missing;
  if (probe.bwrap) c.namespaces = "bwrap";
  else {
    missing.push(
      "bubblewrap is missing or cannot create namespaces here (install Debian's bubblewrap), so " +
        "a recipe is held by Deno's permissions alone: no private file system, /tmp, network or " +
        "process namespace",
    );
  }
  if (probe.memoryCgroup) c.memory = probe.memoryCgroup.version === 1 ? "cgroup-v1" : "cgroup-v2";
  else if (probe.shell) {
    c.memory = "rlimit";
    missing.push(
      "no writable cgroup memory controller, so memory is capped by RLIMIT_DATA (address space " +
        "V8 reserves counts too, so the cap is loose: the limit plus 1 GiB)",
    );
  } else {
    missing.push(
      "no cgroup and no /bin/sh to set limits, so memory is capped only for the JavaScript heap",
    );
  }
  if (probe.pidsCgroup) c.processes = probe.pidsCgroup.version === 1 ? "cgroup-v1" : "cgroup-v2";
  else {
    missing.push(
      "no writable cgroup pids controller, so the number of processes and threads (Workers) " +
        "is not capped",
    );
  }
  return probe;
}

let probed: Promise<HostProbe> | null = null;
let warned = false;

async function host(): Promise<HostProbe> {
  probed ??= probeHost();
  const p = await probed;
  if (!warned && p.containment.missing.length) {
    warned = true;
    console.error(
      `petrel: sandbox: this host lacks ${p.containment.missing.length} protection layer(s):\n` +
        p.containment.missing.map((m) => `  - ${m}`).join("\n") +
        "\n  (see docs/security.md)",
    );
  }
  return p;
}

/**
 * The OS layers runs get on this host (probed once per process; the first call that finds a
 * layer missing prints it once on stderr). Servers refuse to start when `missing` is not empty
 * unless the operator allows it (see docs/security.md).
 *
 * @example
 * ```ts
 * const c = await sandboxContainment();
 * if (c.missing.length) console.log("weak sandbox:", c.missing.join("; "));
 * ```
 */
export async function sandboxContainment(): Promise<Containment> {
  return structuredClone((await host()).containment);
}

const BWRAP_NAMESPACES = [
  "--unshare-all",
  "--unshare-user",
  "--uid",
  "65534",
  "--gid",
  "65534",
  "--disable-userns",
  "--die-with-parent",
  "--new-session",
  "--cap-drop",
  "ALL",
];

/** /bin, /lib, … : symlinks into /usr on merged-/usr systems, else read-only binds. */
function systemLinks(): string[] {
  const out: string[] = [];
  for (const p of ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]) {
    try {
      const st = Deno.lstatSync(p);
      if (st.isSymlink) out.push("--symlink", Deno.readLinkSync(p), p);
      else if (st.isDirectory) out.push("--ro-bind", p, p);
    } catch {
      // absent here
    }
  }
  return out;
}

/** What the child of one run needs from the host file system. */
export interface ContainPaths {
  /** Read-only: the recipe, inputs, models and petrel's sources (exactly Deno's read grant). */
  read: string[];
  /** Read-write: the output folder and the harness channel. */
  write: string[];
  /** Working directory inside the sandbox. */
  cwd: string;
  /** Deno's executable and cache folder (read-only). */
  deno: string;
  denoDir: string | null;
}

/** Kernel limits of one run. */
export interface ContainLimits {
  memoryMb: number;
  maxProcesses: number;
  /** Per-file size cap in bytes (`ulimit -f`), or 0 for none. */
  maxFileBytes: number;
}

/** The cgroups created for one run (removed by {@linkcode releaseRun}). */
export interface RunCgroups {
  memory: { dir: string; version: 1 | 2 } | null;
  pids: { dir: string; version: 1 | 2 } | null;
}

/** A command line that starts `deno args…` inside every available layer. */
export interface ContainedCommand {
  cmd: string;
  args: string[];
  cgroups: RunCgroups;
  containment: Containment;
}

// Creates the run's cgroups, sets their limits and enters them, sets the rlimits, then execs the
// command: everything the command starts inherits all of it. Exit 97 when a layer the probe found
// usable cannot be set up (the runner reports it instead of running with less).
const ENTER_SCRIPT = `
md=$1 mv=$2 mb=$3 pd=$4 pm=$5 fb=$6 dk=$7; shift 7
fail() { echo "petrel-contain: $1" >&2; exit 97; }
if [ -n "$md" ]; then
  mkdir "$md" || fail "cannot create the memory cgroup $md"
  if [ "$mv" = 1 ]; then
    echo "$mb" > "$md/memory.limit_in_bytes" || fail "cannot set $md/memory.limit_in_bytes"
    [ ! -e "$md/memory.memsw.limit_in_bytes" ] || echo "$mb" > "$md/memory.memsw.limit_in_bytes" 2>/dev/null || :
  else
    echo "$mb" > "$md/memory.max" || fail "cannot set $md/memory.max"
    [ ! -e "$md/memory.swap.max" ] || echo 0 > "$md/memory.swap.max" 2>/dev/null || :
  fi
  echo $$ > "$md/cgroup.procs" || fail "cannot enter the memory cgroup $md"
fi
if [ -n "$pd" ]; then
  [ "$pd" = "$md" ] || mkdir "$pd" || fail "cannot create the pids cgroup $pd"
  echo "$pm" > "$pd/pids.max" || fail "cannot set $pd/pids.max"
  [ "$pd" = "$md" ] || echo $$ > "$pd/cgroup.procs" || fail "cannot enter the pids cgroup $pd"
fi
[ "$fb" = 0 ] || ulimit -f "$fb" 2>/dev/null || :
[ "$dk" = 0 ] || ulimit -d "$dk" || fail "cannot set RLIMIT_DATA"
exec "$@"
`;

/**
 * Builds the command line of one run: `/bin/sh` entering fresh cgroups and rlimits, then
 * bubblewrap (when present) with a file system of only `paths`, then `deno args…`.
 */
export async function containedCommand(
  runId: string,
  deno: string,
  denoArgs: string[],
  paths: ContainPaths,
  limits: ContainLimits,
): Promise<ContainedCommand> {
  const h = await host();
  const cg: RunCgroups = {
    memory: h.memoryCgroup
      ? { dir: `${h.memoryCgroup.dir}/petrel-${runId}`, version: h.memoryCgroup.version }
      : null,
    pids: h.pidsCgroup
      ? { dir: `${h.pidsCgroup.dir}/petrel-${runId}`, version: h.pidsCgroup.version }
      : null,
  };
  let inner = [deno, ...denoArgs];
  if (h.bwrap) inner = [h.bwrap, ...bwrapArgs(paths, h.gpuDevices), "--", ...inner];
  if (!h.shell) {
    return { cmd: inner[0], args: inner.slice(1), cgroups: cg, containment: h.containment };
  }
  const memBytes = limits.memoryMb * 1024 * 1024;
  // RLIMIT_DATA counts V8's reservations (code range, cages) too: leave 1 GiB for them.
  const dataKiB = h.memoryCgroup ? 0 : (limits.memoryMb + 1024) * 1024;
  const args = [
    "-c",
    ENTER_SCRIPT,
    "sh",
    cg.memory?.dir ?? "",
    String(cg.memory?.version ?? 0),
    String(memBytes),
    cg.pids?.dir ?? "",
    String(limits.maxProcesses),
    String(limits.maxFileBytes > 0 ? Math.max(1, Math.ceil(limits.maxFileBytes / 512)) : 0),
    String(dataKiB),
    ...inner,
  ];
  return { cmd: SH, args, cgroups: cg, containment: h.containment };
}

function bwrapArgs(p: ContainPaths, gpuDevices: string[]): string[] {
  const a = [...BWRAP_NAMESPACES, "--ro-bind", "/usr", "/usr", ...systemLinks()];
  for (
    const f of ["/etc/ld.so.cache", "/etc/localtime", "/etc/vulkan", "/etc/glvnd", "/etc/OpenCL"]
  ) {
    a.push("--ro-bind-try", f, f);
  }
  a.push("--proc", "/proc", "--dev", "/dev");
  for (const d of gpuDevices) a.push("--dev-bind-try", d, d);
  // GPU drivers other than llvmpipe enumerate devices through sysfs.
  if (gpuDevices.length) a.push("--ro-bind-try", "/sys", "/sys");
  a.push("--tmpfs", "/tmp");
  const binds: [string, string][] = [[p.deno, "--ro-bind"]];
  if (p.denoDir) binds.push([p.denoDir, "--ro-bind-try"]);
  for (const r of p.read) binds.push([r, "--ro-bind"]);
  for (const w of p.write) binds.push([w, "--bind"]);
  // Parents before children, so that a folder bound later is not hidden by its parent's bind.
  binds.sort((x, y) => x[0].split("/").length - y[0].split("/").length);
  for (const [path, how] of binds) a.push(how, path, path);
  // The root is a tmpfs holding the mount points: read-only, so nothing can be stored beside them.
  a.push("--remount-ro", "/", "--chdir", p.cwd);
  return a;
}

/** Resource use and limit hits of a finished run, read from its cgroups. */
export interface RunUsage {
  /** Peak memory of the run's cgroup (resident memory plus page cache), MiB. */
  peakMemoryMb: number | null;
  /** The kernel killed a process of the run for memory. */
  oomKilled: boolean;
  /** A fork or thread creation was refused by the pids limit. */
  pidsLimitHit: boolean;
}

const RELEASE_SCRIPT = `
md=$1 mv=$2 pd=$3
if [ -n "$md" ] && [ -d "$md" ]; then
  if [ "$mv" = 1 ]; then
    echo "peak $(cat "$md/memory.max_usage_in_bytes")"
    echo "oom $(sed -n 's/^oom_kill \\([0-9]*\\)$/\\1/p' "$md/memory.oom_control")"
    echo "failcnt $(cat "$md/memory.failcnt")"
  else
    [ -e "$md/memory.peak" ] && echo "peak $(cat "$md/memory.peak")"
    echo "oom $(sed -n 's/^oom_kill \\([0-9]*\\)$/\\1/p' "$md/memory.events")"
  fi
fi
if [ -n "$pd" ] && [ -d "$pd" ]; then echo "pidsmax $(sed -n 's/^max \\([0-9]*\\)$/\\1/p' "$pd/pids.events")"; fi
for d in "$md" "$pd"; do
  [ -n "$d" ] && [ -d "$d" ] || continue
  i=0
  while ! rmdir "$d" 2>/dev/null; do
    i=$((i + 1)); [ "$i" -gt 100 ] && { echo "petrel: cannot remove cgroup $d" >&2; break; }
    sleep 0.05
  done
done
exit 0
`;

/** Reads a finished run's usage from its cgroups and removes them (waits for exiting tasks). */
export async function releaseRun(cg: RunCgroups): Promise<RunUsage> {
  const usage: RunUsage = { peakMemoryMb: null, oomKilled: false, pidsLimitHit: false };
  if (!cg.memory && !cg.pids) return usage;
  try {
    const { out } = await sh(RELEASE_SCRIPT, [
      cg.memory?.dir ?? "",
      String(cg.memory?.version ?? 0),
      cg.pids?.dir === cg.memory?.dir ? "" : (cg.pids?.dir ?? ""),
    ]);
    for (const line of out.split("\n")) {
      const [k, v] = line.split(" ");
      const n = Number(v);
      if (!v || !Number.isFinite(n)) continue;
      if (k === "peak") usage.peakMemoryMb = Math.round((n / (1 << 20)) * 10) / 10;
      else if (k === "oom") usage.oomKilled = n > 0;
      else if (k === "pidsmax") usage.pidsLimitHit = n > 0;
    }
  } catch {
    // the shell is gone: nothing to read
  }
  return usage;
}
