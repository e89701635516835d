/* The engine's SQL, prepared once on every pooled connection. One X-macro list: the name
 * (SPINE_SQL_<name>) and the text. Times cross the wire as milliseconds since the epoch. */
#ifndef SPINE_SQL_H
#define SPINE_SQL_H

/* Statements read as SQL, aligned by hand. */
/* clang-format off */

#define SPINE_MS(p) "to_timestamp((" p ")::float8 / 1000)"
#define SPINE_EPOCH_MS(c) "(extract(epoch from " c ") * 1000)::int8"

/* The steps of workflow w as the one JSON array a replay reads, those `cond` (SQL) takes. */
#define SPINE_WF_STEPS(cond)                                                                       \
  "(SELECT coalesce(jsonb_agg(jsonb_build_object('seq', s.seq, 'kind', s.kind, 'name', s.name,"   \
  " 'status', s.status, 'result', s.result, 'error', s.error, 'attempt', s.attempt,"              \
  " 'wake_at', " SPINE_EPOCH_MS("s.wake_at") ", 'branch', s.branch,"                   \
  " 'bseq', coalesce(s.branch_seq, s.seq)) ORDER BY s.seq), '[]')"                           \
  " FROM spine.steps s WHERE s.workflow_id = w.id" cond ")"

/* The columns a claimed or loaded workflow comes back with, steps included as one JSON array. */
#define SPINE_WF_COLUMNS                                                                           \
  "w.id, w.process, w.playbook, w.version, w.input, w.trace_id, w.parent_id, w.parent_seq,"       \
  " w.status, w.cancel_requested, w.attempt, w.state, w.attributes, " SPINE_WF_STEPS("")          \
  ", w.variant, w.experiment"

/* STEP_DONE's parameters as rows: arrays in its order ($1 … $11), then `more`. */
#define SPINE_STEP_ROWS(more)                                                                      \
  "unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::spine.step_status[], $6::jsonb[],"   \
  " $7::jsonb[], $8::int[], $9::text[], $10::int[], $11::int8[]" more ")"

/* A workflow this worker starts and runs (spine_engine_start, ctx.start, ctx.child): a plain
 * INSERT, its times the worker's clock ($16, ms), a deadline when its manifest gives one ($15
 * ms); spine.start_workflow (PL/pgSQL) is for cases started from outside. The version goes first
 * while the engine has not stored it. No ON CONFLICT for a case started here: its id is new, and
 * a speculative insertion costs a descent of the primary key more (docs/performance.md). */
#define SPINE_WF_INSERT_TEXT                                                                       \
  "INSERT INTO spine.workflows (id, process, playbook, version, status, input, trace_id, owner,"   \
  " parent_id, parent_seq, variant, experiment, subject, bucket, params, max_duration,"           \
  " deadline_at, created_at, updated_at) VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8, $9,"  \
  " $10, $11, $12, $13, $14, $15, " SPINE_MS("$16::int8 + $17::int8") ", "                         \
  SPINE_MS("$16::int8") ", " SPINE_MS("$16::int8") ")"
#define SPINE_WF_INSERT_MANY_TEXT                                                                  \
  "INSERT INTO spine.workflows (id, process, playbook, version, status, input, trace_id, owner,"   \
  " parent_id, parent_seq, variant, experiment, subject, bucket, params, max_duration,"           \
  " deadline_at, created_at, updated_at) SELECT v.id, v.pr, v.pb, v.ve, 'running', v.inp, v.tr,"  \
  " v.o, v.pa, v.ps, v.va, v.ex, v.su, v.bu, v.pm, v.md, " SPINE_MS("v.t + v.dl") ", "             \
  SPINE_MS("v.t") ", " SPINE_MS("v.t") " FROM unnest($1::text[], $2::text[], $3::text[],"          \
  " $4::text[], $5::jsonb[], $6::text[], $7::int8[], $8::text[], $9::int[], $10::text[],"          \
  " $11::text[], $12::text[], $13::int[], $14::jsonb[], $15::text[], $16::int8[], $17::int8[])"    \
  " AS v(id, pr, pb, ve, inp, tr, o, pa, ps, va, ex, su, bu, pm, md, t, dl)"

/* A workflow's own row is found by its primary key alone. `owner IS NOT DISTINCT FROM` (for an
 * owner that is never NULL: `=`) proves nothing of `owner IS NOT NULL`, so the planner cannot take
 * the partial owner index instead, as it does for `owner =` when that index looked empty at the
 * last ANALYZE (every row ended) — and then read every workflow the worker holds, at every step
 * (docs/performance.md, "A plan that degrades"). */
#define SPINE_SQL_LIST(XX)                                                                         \
  XX(VERSION_LOAD, "SELECT name, path, source FROM spine.playbook_versions WHERE hash = $1")       \
  XX(VERSION_STORE, "INSERT INTO spine.playbook_versions (hash, name, path, source)"              \
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING")                      \
  XX(WF_INSERT, SPINE_WF_INSERT_TEXT)                                                             \
  /* A child's (ctx.start, ctx.child): a repair that removed the parent's step of its start     \
   * (spine.retry_workflows, a fork) replays that start, and finds the child's row there. */     \
  XX(WF_INSERT_CHILD, SPINE_WF_INSERT_TEXT " ON CONFLICT DO NOTHING")                             \
  /* The time a step ends is the worker's clock ($11, ms; the one its deadlines use): a call of   \
   * spine.now() a step cost more database CPU than the insert (docs/performance.md). */        \
  XX(STEP_DONE, "INSERT INTO spine.steps (workflow_id, seq, kind, name, status, result, error,"   \
                " attempt, started_at, ended_at, branch, branch_seq) VALUES ($1, $2, $3, $4, $5,"  \
                " $6, $7, $8, " SPINE_MS("$11") ", " SPINE_MS("$11") ", $9, $10)")                 \
  /* STEP_DONE with its op's fence inside ($12 owner, $13 epoch), for an op that is nothing but  \
   * a step's record (the hot path): one statement instead of two. A worker that lost its claim \
   * raises SPLC0 before the row is written, as FENCE does. */                                   \
  XX(STEP_DONE_FENCED, "INSERT INTO spine.steps (workflow_id, seq, kind, name, status, result,"   \
                       " error, attempt, started_at, ended_at, branch, branch_seq) SELECT"         \
                       " $1::text, $2::int, $3::text, $4::text, $5::text, $6::jsonb, $7::jsonb,"   \
                       " $8::int, " SPINE_MS("$11::int8") ", " SPINE_MS("$11::int8") ","           \
                       " $9::text, $10::int WHERE CASE WHEN EXISTS (SELECT 1 FROM"                \
                       " spine.workflows WHERE id = $1::text AND owner IS NOT DISTINCT FROM"       \
                       " $12::int8 AND epoch = $13::int8) THEN true ELSE (SELECT false FROM"       \
                       " spine.lost_claim($1::text, $12::int8, $13::int8)) END")                   \
  /* The merged forms (runtime/store/merge.c): one statement for the same statement of many ops \
   * of a batch, each parameter an array of the ops' values, in the order of the single form's.  \
   * Those that fence compare the rows they wrote with the ops they carry, and raise SPLC0 for    \
   * the batch when a claim was lost; the store then sends the ops one by one. */                 \
  XX(STEP_DONE_MANY, "INSERT INTO spine.steps (workflow_id, seq, kind, name, status, result,"     \
                     " error, attempt, started_at, ended_at, branch, branch_seq) SELECT v.w, v.s,"  \
                     " v.k, v.n, v.st, v.r, v.e, v.a, " SPINE_MS("v.t") ", " SPINE_MS("v.t") ","   \
                     " v.b, v.bs FROM " SPINE_STEP_ROWS("") " AS v(w, s, k, n, st, r, e, a, b, bs," \
                     " t)")                                                                          \
  XX(STEP_DONE_FENCED_MANY,                                                                        \
     "WITH v AS (SELECT * FROM " SPINE_STEP_ROWS(", $12::int8[], $13::int8[]") " AS v(w, s, k, n," \
     " st, r, e, a, b, bs, t, o, ep)), i AS (INSERT INTO spine.steps (workflow_id, seq, kind,"     \
     " name, status, result, error, attempt, started_at, ended_at, branch, branch_seq) SELECT"     \
     " v.w, v.s, v.k, v.n, v.st, v.r, v.e, v.a, " SPINE_MS("v.t") ", " SPINE_MS("v.t") ", v.b,"    \
     " v.bs FROM v JOIN spine.workflows f ON f.id = v.w AND f.owner IS NOT DISTINCT FROM v.o"      \
     " AND f.epoch = v.ep RETURNING 1) SELECT CASE WHEN (SELECT count(*) FROM i) <>"              \
     " cardinality($1::text[]) THEN spine.lost_claims(cardinality($1::text[]) -"                  \
     " (SELECT count(*) FROM i)) END")                                                             \
  XX(FENCE_MANY, "SELECT CASE WHEN l.n > 0 THEN spine.lost_claims(l.n) END FROM (SELECT"          \
                 " cardinality($1::text[]) - count(*) AS n FROM unnest($1::text[], $2::int8[],"     \
                 " $3::int8[]) AS v(id, o, ep) JOIN spine.workflows f ON f.id = v.id AND f.owner"  \
                 " IS NOT DISTINCT FROM v.o AND f.epoch = v.ep) l")                                \
  XX(WF_INSERT_MANY, SPINE_WF_INSERT_MANY_TEXT)                                                   \
  XX(WF_INSERT_CHILD_MANY, SPINE_WF_INSERT_MANY_TEXT " ON CONFLICT DO NOTHING")                   \
  XX(WF_END_MANY, "UPDATE spine.workflows w SET status = v.st, result = v.r, error = v.e,"         \
                  " owner = NULL, wake_at = NULL, waiting_for = NULL, updated_at = "               \
                  SPINE_MS("v.t") ", ended_at = " SPINE_MS("v.t") " FROM unnest($1::text[],"      \
                  " $2::spine.workflow_status[], $3::jsonb[], $4::jsonb[], $5::int8[], $6::int8[])" \
                  " AS v(id, st, r, e, o, t) WHERE w.id = v.id AND w.owner IS NOT DISTINCT FROM"   \
                  " v.o")                                                                          \
  XX(STEP_INTENT, "INSERT INTO spine.steps (workflow_id, seq, kind, name, status, result,"        \
                  " attempt, started_at, ended_at, branch, branch_seq) VALUES ($1, $2, 'intent',"  \
                  " $3, 'completed', current_setting('spine.result')::jsonb, 1, " SPINE_MS("$6")   \
                  ", " SPINE_MS("$6") ", $4, $5) RETURNING result")                                \
  XX(STEP_WAIT, "INSERT INTO spine.steps (workflow_id, seq, kind, name, status, result, attempt," \
                " wake_at, branch, branch_seq) VALUES ($1, $2, $3, $4, 'waiting', $5, 1, "          \
                SPINE_MS("$6") ", $7, $8)")         \
  XX(STEP_RETRY, "INSERT INTO spine.steps (workflow_id, seq, kind, name, status, error, attempt," \
                 " wake_at, branch, branch_seq) VALUES ($1, $2, $3, $4, 'retrying', $5, $6, "       \
                 SPINE_MS("$7") ", $8, $9)"       \
                 " ON CONFLICT (workflow_id, seq) DO UPDATE SET status = 'retrying',"              \
                 " error = EXCLUDED.error, attempt = EXCLUDED.attempt, wake_at = EXCLUDED.wake_at" \
                 " WHERE spine.steps.status IN ('retrying', 'running')"                           \
                 " AND spine.steps.kind = EXCLUDED.kind")                                          \
  XX(STEP_FINISH, "UPDATE spine.steps SET status = $3, result = $4, error = $5, attempt = $6,"    \
                  " ended_at = spine.now() WHERE workflow_id = $1 AND seq = $2"                    \
                  " AND status IN ('waiting', 'retrying', 'running')")                             \
  XX(PROVIDER_BEGIN,                                                                               \
     "INSERT INTO spine.steps (workflow_id, seq, kind, name, status, attempt, branch, branch_seq)" \
     " VALUES ($1, $2, 'provider', $3, 'running', $4, $5, $6)"                                     \
     " ON CONFLICT (workflow_id, seq) DO UPDATE"                                                   \
     " SET status = 'running', attempt = EXCLUDED.attempt, wake_at = NULL,"                        \
     " started_at = spine.now()"                                                                   \
     " WHERE spine.steps.kind = 'provider' AND spine.steps.name = EXCLUDED.name"                  \
     " AND spine.steps.status IN ('running', 'retrying') RETURNING 1")                            \
  XX(PROVIDER_PAUSE,                                                                               \
     "WITH s AS (UPDATE spine.steps SET status = 'paused', error = $3, attempt = $4,"             \
     " ended_at = spine.now() WHERE workflow_id = $1 AND seq = $2"                                 \
     " AND status IN ('running', 'paused') RETURNING 1),"                                          \
     " i AS (INSERT INTO spine.incidents (workflow_id, seq, kind, step, error, attempts)"         \
     " SELECT $1, $2, 'provider_exhausted', $5, $3, $4 FROM s"                                     \
     " ON CONFLICT (workflow_id, seq) WHERE resolved_at IS NULL DO NOTHING RETURNING id)"          \
     " UPDATE spine.workflows SET status = 'paused', owner = NULL, wake_at = NULL,"               \
     " waiting_for = jsonb_build_object('kind', 'incident', 'name', $5::text, 'step', $2::int),"  \
     " updated_at = spine.now() WHERE id = $1 AND owner = $6 RETURNING (SELECT id FROM i)")        \
  XX(WAIT_BEGIN,                                                                                   \
     "WITH s AS (SELECT id, payload FROM spine.signals WHERE workflow_id = $1 AND name = $5"      \
     " AND consumed_seq IS NULL AND ($7::jsonb IS NULL OR payload @> $7::jsonb)"                   \
     " ORDER BY id LIMIT 1 FOR UPDATE),"                                                           \
     " u AS (UPDATE spine.signals g SET consumed_seq = $2 FROM s WHERE g.id = s.id"               \
     " RETURNING s.payload)"                                                                       \
     " INSERT INTO spine.steps (workflow_id, seq, kind, name, status, result, wake_at, ended_at,"  \
     " signal, match, branch, branch_seq)"                                                         \
     " SELECT $1::text, $2::int, $3::text, $4::text,"                                              \
     " CASE WHEN u.payload IS NULL THEN 'waiting' ELSE 'completed' END,"                          \
     " u.payload, " SPINE_MS("$6") ", CASE WHEN u.payload IS NULL THEN NULL ELSE spine.now() END," \
     " $5::text, $7::jsonb, $8::text, $9::int FROM (SELECT 1) one LEFT JOIN u ON true"             \
     " RETURNING status, result")                                                                  \
  XX(WAIT_DELIVER,                                                                                 \
     "WITH st AS (SELECT 1 FROM spine.steps WHERE workflow_id = $1 AND seq = $2"                  \
     " AND status = 'waiting' FOR UPDATE),"                                                        \
     " s AS (SELECT id, payload FROM spine.signals WHERE workflow_id = $1 AND name = $3"          \
     " AND consumed_seq IS NULL AND ($5::jsonb IS NULL OR payload @> $5::jsonb)"                   \
     " AND EXISTS (SELECT 1 FROM st) ORDER BY id LIMIT 1 FOR UPDATE),"                             \
     " u AS (UPDATE spine.signals g SET consumed_seq = $2 FROM s WHERE g.id = s.id"               \
     " RETURNING s.payload)"                                                                       \
     " UPDATE spine.steps t SET status = 'completed', result = (SELECT payload FROM u),"          \
     " ended_at = spine.now() WHERE t.workflow_id = $1 AND t.seq = $2 AND t.status = 'waiting'"    \
     " AND (EXISTS (SELECT 1 FROM u) OR $4::bool) RETURNING t.result")                             \
  /* The waits of a parallel's branches it no longer waits for (their paths start with $2). */ \
  XX(STEPS_CANCEL, "UPDATE spine.steps SET status = 'cancelled', ended_at = spine.now()"          \
                   " WHERE workflow_id = $1 AND left(branch, length($2)) = $2"                     \
                   " AND status IN ('waiting', 'retrying', 'running')")                            \
  XX(WF_WAIT, "UPDATE spine.workflows SET status = 'waiting', waiting_for = $2,"                  \
              " wake_at = " SPINE_MS("$3") ", updated_at = spine.now() WHERE id = $1")             \
  XX(WF_RUN, "UPDATE spine.workflows SET status = 'running', waiting_for = NULL,"                 \
             " updated_at = spine.now() WHERE id = $1")                                            \
  XX(WF_ATTRS, "UPDATE spine.workflows SET state = $2, attributes = $3,"                         \
               " outcome = coalesce($4, outcome), updated_at = spine.now() WHERE id = $1")         \
  XX(WF_END, "UPDATE spine.workflows SET status = $2, result = $3, error = $4, owner = NULL,"     \
             " wake_at = NULL, waiting_for = NULL, updated_at = " SPINE_MS("$6") ", ended_at = "   \
             SPINE_MS("$6") " WHERE id = $1 AND owner IS NOT DISTINCT FROM $5")                    \
  XX(WF_RELEASE_ALL, "UPDATE spine.workflows f SET owner = NULL, wake_at = CASE WHEN"             \
                     " f.status = 'waiting' AND NOT spine.signal_pending(f.id) THEN f.wake_at"     \
                     " ELSE spine.now() END WHERE f.owner = $1")                                   \
  XX(SIGNAL_SEND,                                                                                  \
     "WITH w AS (UPDATE spine.workflows f SET wake_at = CASE WHEN"                                 \
     " spine.signal_awaited($1, $2, $3) THEN spine.now() ELSE f.wake_at END WHERE f.id = $1"      \
     " AND f.status = 'waiting' RETURNING 1),"                                                     \
     " i AS (INSERT INTO spine.signals (workflow_id, name, payload) VALUES ($1, $2, $3)"          \
     " RETURNING id)"                                                                              \
     " SELECT (SELECT id FROM i), pg_notify('spine', 's:' || $1)")                                 \
  XX(WEBHOOK_DELIVER, "SELECT spine.webhook_deliver($1, $2, $3::interval, $4::jsonb)")             \
  XX(NOTIFY_WORK, "SELECT pg_notify('spine', 'w')")                                                \
  XX(VIRTUAL_NOW, "SELECT set_config('spine.now_ms', $1, true)")                                   \
  XX(NOTIFY_MARK, "SELECT pg_notify('spine', $1)")                                                 \
  XX(CLOCK_SET, "INSERT INTO spine.clock (id, now_ms, worker) VALUES (true, $1, $2)"               \
                " ON CONFLICT (id) DO UPDATE SET now_ms = EXCLUDED.now_ms,"                        \
                " worker = EXCLUDED.worker, updated_at = now()")                                   \
  XX(CLAIM, "UPDATE spine.workflows w SET owner = $1, status = CASE WHEN w.status = 'pending'"    \
            " THEN 'running' ELSE w.status END, updated_at = spine.now(), epoch = w.epoch + 1"     \
            " FROM (SELECT id FROM spine.workflows WHERE owner IS NULL AND wake_at <= spine.now()" \
            " ORDER BY wake_at LIMIT $2 FOR UPDATE SKIP LOCKED) c"                                 \
            " WHERE w.id = c.id RETURNING " SPINE_WF_COLUMNS ", w.epoch, w.lost_runs,"               \
            " w.expired_at IS NOT NULL, w.params")             \
  /* A passive workflow's row, as a claim returns it, while the claim is still ours; the      \
   * merged form answers the rows of those still ours, each with its op's place last. */        \
  XX(WF_LOAD, "SELECT " SPINE_WF_COLUMNS ", w.epoch, w.lost_runs, w.expired_at IS NOT NULL,"     \
              " w.params FROM spine.workflows w WHERE w.id = $1 AND w.owner = $2"                 \
              " AND w.epoch = $3")                                                                 \
  XX(WF_LOAD_MANY, "SELECT " SPINE_WF_COLUMNS ", w.epoch, w.lost_runs, w.expired_at IS NOT"       \
                   " NULL, w.params, v.ord FROM unnest($1::text[], $2::int8[], $3::int8[]) WITH" \
                   " ORDINALITY AS v(id, o, ep, ord) JOIN spine.workflows w ON w.id = v.id"        \
                   " AND w.owner = v.o AND w.epoch = v.ep")                                        \
  /* The nearest wake-up of a free workflow, or deadline (max_duration) of any. */             \
  XX(NEXT_WAKE, "SELECT " SPINE_EPOCH_MS("least((SELECT min(wake_at) FROM spine.workflows"        \
                " WHERE owner IS NULL AND wake_at IS NOT NULL), (SELECT min(deadline_at)"          \
                " FROM spine.workflows WHERE deadline_at IS NOT NULL AND ended_at IS NULL"         \
                " AND NOT cancel_requested))"))                                                    \
  /* Workflows past their deadline are cancelled as expired before a claim takes them. */       \
  XX(EXPIRE, "SELECT spine.expire_workflows()")                                                   \
  XX(WORKER_HEARTBEAT, "UPDATE spine.workers SET lease_until = now() + $2 * interval '1 ms'"      \
                       " WHERE id = $1 RETURNING id")                                              \
  XX(WORKERS_KILL, "SELECT count(pg_terminate_backend(a.pid, 2000)) FROM spine.workers k"     \
                   " JOIN pg_stat_activity a ON a.pid = ANY (k.backends)"                           \
                   " AND a.backend_start <= k.registered_at"                                        \
                   " WHERE k.id <> $1 AND spine.worker_dead(k)")                                    \
  XX(STAT_REFRESH, "SELECT pg_stat_clear_snapshot()")                                             \
  XX(WORKERS_REAP,                                                                                 \
     "WITH f AS (SELECT w.id FROM spine.workflows w JOIN spine.workers k ON w.owner = k.id"       \
     " WHERE k.id <> $1 AND spine.worker_dead(k) AND NOT spine.worker_sessions(k)"                 \
     " FOR UPDATE OF w SKIP LOCKED)"                                                               \
     " UPDATE spine.workflows w SET owner = NULL,"                                                 \
     " lost_runs = w.lost_runs + CASE WHEN w.status = 'running' THEN 1 ELSE 0 END,"               \
     " wake_at = CASE WHEN w.status = 'waiting' AND NOT spine.signal_pending(w.id)"                \
     " THEN w.wake_at ELSE spine.now() END"                                                        \
     " FROM f WHERE w.id = f.id RETURNING w.id")                                                   \
  XX(WORKERS_DROP, "DELETE FROM spine.workers k WHERE k.id <> $1 AND spine.worker_dead(k)"        \
                   " AND NOT spine.worker_sessions(k)"                                              \
                   " AND NOT EXISTS (SELECT 1 FROM spine.workflows w WHERE w.owner = k.id)"         \
                   " RETURNING k.id")                                                              \
  XX(WF_RELEASE, "UPDATE spine.workflows f SET owner = NULL, lost_runs = f.lost_runs + $4,"       \
                 " wake_at = CASE WHEN $4 = 0 AND f.status = 'waiting'"                            \
                 " AND NOT spine.signal_pending(f.id) THEN f.wake_at"                              \
                 " ELSE spine.now() END WHERE f.id = $1 AND f.owner IS NOT DISTINCT FROM $2 AND f.epoch = $3")    \
  XX(FENCE, "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM spine.workflows WHERE id = $1"             \
            " AND owner IS NOT DISTINCT FROM $2 AND epoch = $3) THEN spine.lost_claim($1, $2, $3) END")

typedef enum {
#define XX(name, text) SPINE_SQL_##name,
  SPINE_SQL_LIST(XX)
#undef XX
      SPINE_SQL_COUNT_
} spine_sql_id;

/* The statement's text (static). */
const char *spine_sql_text(spine_sql_id id);
/* The statement's prepared name ("s3"), static. */
const char *spine_sql_name(spine_sql_id id);
/* The merged form of statement `id` (a *_MANY, same parameters as arrays), or -1 if it has none;
 * *rows: it answers a row per op that had one, its place in the group last (merge.h). */
int spine_sql_merged(int id, int *rows);

/* clang-format on */

#endif
