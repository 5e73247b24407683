-- Up Migration

-- Every processed slot leaves dead tuples behind (queued -> running -> succeeded), and their
-- entries in the queue's partial indexes (queue_rank_idx, running_lease_idx) stay until a
-- vacuum removes them: the claim, the queue position and the recovery scan all start at the
-- low end of those indexes, where the dead entries pile up. PostgreSQL's default waits for 20%
-- of the table to be dead (a million tuples at 5 M rows, ~500 k processed slots). Here a vacuum
-- starts after a fixed number of dead tuples whatever the table size, and runs unthrottled
-- (it reads only pages the visibility map says changed). Measured in `npm run bench -- --only
-- queue`: see the README (Benchmarks) for the figures with these settings and with the defaults.
ALTER TABLE generated_images SET (
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 20000,
  autovacuum_vacuum_insert_scale_factor = 0,
  autovacuum_vacuum_insert_threshold = 100000,
  autovacuum_analyze_scale_factor = 0,
  autovacuum_analyze_threshold = 50000,
  autovacuum_vacuum_cost_delay = 0
);

-- No Down Migration: see 1763683200000_core.sql.
