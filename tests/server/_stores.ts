/**
 * The job-store backends the store suite runs against: SQLite always; PostgreSQL when
 * `PETREL_TEST_PG_URL` is set (`.ci/run` starts one; `scripts/pg_test_server.sh` starts one by
 * hand). Each PostgreSQL store gets its own schema, dropped at the end.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { type JobStore, PgJobStore, SqliteJobStore } from "../../core/server/mod.ts";

/** The PostgreSQL URL of the test database, if any. */
export const PG_URL: string | undefined = Deno.env.get("PETREL_TEST_PG_URL") || undefined;

/** A backend under test: opens the store (again, after a simulated crash) and cleans up. */
export interface Backend {
  name: string;
  /** Opens (or re-opens) the store. */
  open(): Promise<JobStore>;
  /** Makes every worker seen so far look silent for longer than the lease (PostgreSQL). */
  expireWorkers(): void;
  /** Runs SQL on the database behind the store; `{jobs}` names the jobs table. */
  exec(sql: string): Promise<void>;
  /** Removes the database. */
  cleanup(): Promise<void>;
}

/** The backends to test: `sqlite`, and `postgres` when a test database is configured. */
export function backends(): { name: string; make: () => Promise<Backend> }[] {
  const out = [{
    name: "sqlite",
    make: async (): Promise<Backend> => {
      const dir = await Deno.makeTempDir();
      return {
        name: "sqlite",
        open: () => Promise.resolve(new SqliteJobStore(`${dir}/t.db`)),
        expireWorkers: () => {},
        exec: (sql: string) => {
          const db = new DatabaseSync(`${dir}/t.db`);
          try {
            db.exec(sql.replaceAll("{jobs}", "jobs"));
          } finally {
            db.close();
          }
          return Promise.resolve();
        },
        cleanup: () => Deno.remove(dir, { recursive: true }),
      };
    },
  }];
  if (PG_URL) {
    const url = PG_URL;
    out.push({
      name: "postgres",
      make: (): Promise<Backend> => {
        const schema = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
        let offset = 0;
        return Promise.resolve({
          name: "postgres",
          open: () =>
            PgJobStore.open(url, {
              schema,
              leaseSeconds: 10,
              now: () => Date.now() + offset,
            }),
          expireWorkers: () => {
            offset += 11_000;
          },
          exec: async (sql: string) => {
            const c = new pg.Client({ connectionString: url });
            await c.connect();
            try {
              await c.query(sql.replaceAll("{jobs}", `${schema}.jobs`));
            } finally {
              await c.end();
            }
          },
          cleanup: () => PgJobStore.dropSchema(url, schema),
        });
      },
    });
  }
  return out;
}
