/**
 * `petrel serve`: a shared, sandboxed reconstruction server (HTTP API, job queue in SQLite,
 * web page). See `docs/server.md`.
 *
 * @module
 */
export {
  canReadProc,
  createServer,
  type PetrelServer,
  type RunningServer,
  serve,
} from "./server.ts";
export type { ServeOptions } from "./server.ts";
export {
  type Limits,
  limitsSchema,
  loadServerConfig,
  parseServerConfig,
  type ServerConfig,
  type ServerConfigInput,
  serverConfigSchema,
  type UserConfig,
  userLimits,
  userSchema,
} from "./config.ts";
export type { RecipeDescription, SandboxOptions, SandboxResult } from "./sandbox.ts";
export {
  AUTH_DEFAULTS,
  Authenticator,
  generateToken,
  hashToken,
  verifyToken,
  verifyTokenAsync,
} from "./auth.ts";
export type { AuthOptions, AuthOutcome, TokenHashAlgorithm } from "./auth.ts";
export {
  PRIVATE_DIR_MODE,
  PRIVATE_FILE_MODE,
  privateDatabaseFiles,
  privateDir,
} from "./private.ts";
export {
  buildStats,
  DURATION_BUCKETS,
  type HeartbeatAnswer,
  type JobClaim,
  type JobOutcome,
  type JobReason,
  type JobRecord,
  type JobState,
  type JobStore,
  type LogBatchKey,
  type LogLine,
  type NewJob,
  SqliteJobStore,
  type StoreStats,
} from "./store.ts";
export {
  DatabaseConfigError,
  describePgError,
  PG_SCHEMA_VERSION,
  PgJobStore,
  type PgStoreOptions,
  redactUrl,
  type StoreWatcher,
} from "./store_pg.ts";
export {
  JobEvents,
  jobOutDir,
  JobRunner,
  type JobRunnerOptions,
  type SandboxRunner,
} from "./queue.ts";
export { type AppContext, createHandler, jobView, jsonSubmissionSchema } from "./app.ts";
export { killOrphanedRuns } from "./orphans.ts";
export { metricsResponse, prometheusText } from "./metrics.ts";
export { type RunningWorker, startWorker, type WorkerOptions } from "./worker.ts";
