-- Leases (DESIGN §2.4): a process may run its claims until lease_expires_at, in database time, renewed by every
-- heartbeat; others recover them after that, or earlier only on a certain sign of death.
ALTER TABLE keel_processes ADD COLUMN lease_expires_at INTEGER NOT NULL DEFAULT 0;
UPDATE keel_processes SET lease_expires_at = last_heartbeat_at + 30000000;
CREATE INDEX keel_processes_lease ON keel_processes (lease_expires_at);
-- Where a pid check is valid: the boot id and pid namespace of the process's host (null: never check its pid), and
-- the pid's start time in clock ticks since boot (/proc/<pid>/stat), which no wall-clock step can change.
ALTER TABLE keel_processes ADD COLUMN host_id TEXT NULL;
ALTER TABLE keel_processes ADD COLUMN pid_start_ticks INTEGER NULL;
-- Always 'lease' on SQLite (no sessions); kept so every engine's process rows read alike.
ALTER TABLE keel_processes ADD COLUMN liveness TEXT NOT NULL DEFAULT 'lease';
-- Set when a process begins a graceful stop: whatever it leaves behind is recovered without charging its jobs.
ALTER TABLE keel_processes ADD COLUMN stopping_at INTEGER NULL;

-- Exact blame (DESIGN §2.5): a job that was running beside others when its process died counts a shared loss,
-- uncharged; at its second it becomes a suspect and runs alone in its process until one of its runs ends by itself,
-- so the next death names its culprit. (Most deaths are not a job's doing — a kill, an eviction, a neighbour — so one
-- shared death alone does not slow a job's recovery down.)
ALTER TABLE keel_jobs ADD COLUMN suspect INTEGER NOT NULL DEFAULT 0;
ALTER TABLE keel_jobs ADD COLUMN shared_losses INTEGER NOT NULL DEFAULT 0;
ALTER TABLE keel_ready_executions ADD COLUMN suspect INTEGER NOT NULL DEFAULT 0;
CREATE INDEX keel_ready_suspects ON keel_ready_executions (priority, job_id) WHERE suspect;
-- Who ran a finished job's last attempt (JSON: process row id, name, pid, host), written by its completion.
ALTER TABLE keel_jobs ADD COLUMN finished_by TEXT NULL;
-- A claim whose job did not stop when cancelled: its process is replaced, and this job alone is charged for it.
ALTER TABLE keel_claimed_executions ADD COLUMN unresponsive_at INTEGER NULL;

-- Every run that did not finish the job: failed, lost with its worker, released uncharged (stop, fence, reconcile),
-- rejected as a late result, abandoned. A finished run is told by keel_jobs (started_at, finished_at, finished_by).
CREATE TABLE keel_job_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      INTEGER NOT NULL REFERENCES keel_jobs (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    claim_id    INTEGER NULL,
    runner      TEXT    NULL,
    started_at  INTEGER NULL,
    ended_at    INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    cause       TEXT    NULL,
    charged     INTEGER NOT NULL DEFAULT 0,
    detail      TEXT    NULL,
    shared_with TEXT    NULL
);
CREATE INDEX keel_job_runs_job ON keel_job_runs (job_id);
