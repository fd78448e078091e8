-- Checkpointer and background writer counters from pg_stat_bgwriter; PostgreSQL 13-16.
SELECT checkpoints_timed::float8 AS checkpoints_timed,
       checkpoints_req::float8 AS checkpoints_req,
       buffers_checkpoint::float8 AS buffers_checkpoint,
       buffers_clean::float8 AS buffers_clean,
       maxwritten_clean::float8 AS maxwritten_clean,
       buffers_backend::float8 AS buffers_backend,
       buffers_alloc::float8 AS buffers_alloc,
       checkpoint_write_time::float8 AS checkpoint_write_time_ms,
       extract(epoch FROM stats_reset)::float8 AS checkpointer_stats_reset_epoch
FROM pg_stat_bgwriter
ORDER BY 1
