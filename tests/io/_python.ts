/** Runs `/usr/bin/python3` (with numpy/nibabel) as an independent reference, when present. */

let available: boolean | undefined;

/** True when /usr/bin/python3 with numpy and nibabel can be run. */
export async function hasPython(): Promise<boolean> {
  if (available !== undefined) return available;
  try {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import numpy, nibabel"],
      stdout: "null",
      stderr: "null",
    }).output();
    available = out.success;
  } catch {
    available = false;
  }
  return available;
}

/** Runs a Python snippet and returns its stdout parsed as JSON. */
export async function python<T = unknown>(code: string): Promise<T> {
  const out = await new Deno.Command("/usr/bin/python3", { args: ["-c", code] }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`python failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(text) as T;
}
