#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env
/**
 * The `petrel` command line. Install with
 *
 *   deno install -g -n petrel --config <petrel>/deno.json \
 *     --allow-read --allow-write --allow-run --allow-env <petrel>/petrel.ts
 *
 * See docs/cli.md.
 *
 * @module
 */
import { main } from "./cli/main.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
