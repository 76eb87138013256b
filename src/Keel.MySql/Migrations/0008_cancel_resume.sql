-- Cancel with resume (docs/running-jobs.md): the run is asked to stop like a cancel, but its job goes back to its queue
-- with its checkpoint instead of being discarded. Its reason is kept apart from cancel_reason, which every recovery path
-- reads as "discard": a resumable run whose process dies goes back like any other claim.
ALTER TABLE keel_claimed_executions ADD COLUMN cancel_resume_reason TEXT NULL;
