/**
 * Job routes: submit and list (`jobs`), one job (`jobs/:id`, DELETE cancels), `cancel` and
 * `purge`.
 *
 * @module
 */
import { userLimits } from "../config.ts";
import { HttpError, jobView, json, TERMINAL } from "../http.ts";
import { acceptSubmission, parseSubmission } from "../submission.ts";
import { type AppContext, ownJob, type Route, type RouteRequest } from "./route.ts";

/** The job routes over `ctx`. */
export function jobRoutes(ctx: AppContext): Route[] {
  const { config, store, runner, events } = ctx;

  async function submit({ user, req }: RouteRequest): Promise<Response> {
    const sub = await parseSubmission(req, userLimits(config, user).maxUploadBytes);
    const job = await acceptSubmission(sub, { config, store, user });
    runner.kick();
    return json(jobView(job), 201, { location: `/api/jobs/${job.id}` });
  }

  async function list({ user, url }: RouteRequest): Promise<Response> {
    const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get("limit")) || 200));
    const jobs = await store.list(user.name, { limit });
    return json({ jobs: jobs.map(jobView) });
  }

  async function cancel({ user, params }: RouteRequest): Promise<Response> {
    const id = params.id;
    const job = await ownJob(store, user, id);
    if (TERMINAL.has(job.state)) return json(jobView(job));
    if (!(await store.cancelQueued(id))) {
      await store.requestCancel(id);
      runner.cancel(id);
    }
    events.emit(id);
    // Wait briefly for the run to end so the answer usually shows the final state.
    for (let i = 0; i < 20; i++) {
      const j = await store.get(id);
      if (j && TERMINAL.has(j.state)) return json(jobView(j));
      await events.wait(id, 250);
    }
    return json(jobView((await store.get(id))!), 202);
  }

  async function purge({ user, params }: RouteRequest): Promise<Response> {
    const id = params.id;
    const job = await ownJob(store, user, id);
    if (!TERMINAL.has(job.state) || !(await store.remove(id))) {
      throw new HttpError(409, `job '${id}' has not ended; cancel it first, then purge it`);
    }
    await Deno.remove(job.jobDir, { recursive: true }).catch(() => {});
    return json({ purged: id });
  }

  return [
    { path: "jobs", methods: { GET: list, POST: submit } },
    {
      path: "jobs/:id",
      methods: {
        GET: async ({ user, params }) => json(jobView(await ownJob(store, user, params.id))),
        DELETE: cancel,
      },
    },
    { path: "jobs/:id/cancel", methods: { POST: cancel } },
    { path: "jobs/:id/purge", methods: { POST: purge } },
  ];
}
