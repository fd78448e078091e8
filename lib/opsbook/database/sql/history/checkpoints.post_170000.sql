-- Checkpointer counters (pg_stat_checkpointer) and background writer counters (pg_stat_bgwriter); PostgreSQL 17+.
SELECT c.num_timed::float8 AS checkpoints_timed,
       c.num_requested::float8 AS checkpoints_req,
       c.buffers_written::float8 AS buffers_checkpoint,
       b.buffers_clean::float8 AS buffers_clean,
       b.maxwritten_clean::float8 AS maxwritten_clean,
       NULL::float8 AS buffers_backend,
       b.buffers_alloc::float8 AS buffers_alloc,
       c.write_time::float8 AS checkpoint_write_time_ms,
       extract(epoch FROM c.stats_reset)::float8 AS checkpointer_stats_reset_epoch
FROM pg_stat_checkpointer c, pg_stat_bgwriter b
ORDER BY 1
