/* The engine as a process (engine.h): it migrates and connects, registers this worker and keeps
 * its lease with heartbeats (which reap dead workers), hears notifications (signals, cancels,
 * new work, its own markers), reconnects as a new worker after a lost connection, and stops.
 * It never blocks the loop after spine_engine_serve(): every database call goes through the
 * store. */
#include "engine.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctx.h"
#include "engine_internal.h"
#include "intents.h"
#include "log.h"
#include "migrate.h"
#include "sql.h"

#define MAX_BACKENDS     80
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 5000

/* ---- notifications ---- */

/* Tells workflow `id` what an 's' (a signal), 'c' (a cancel), 'x' (its max_duration ran out,
 * spine.expire_workflows) or 'm' (an operator migrated or superseded it, 0013_repair.sql)
 * notification says, if this worker holds it, in memory or passive; 0 if it does not. */
static int tell(spine_engine *eng, char kind, const char *id) {
  spine_wf *wf = spine_wf_find(eng, id);
  if (!wf) {
    spine_passive_event ev = kind == 's'   ? SPINE_PASSIVE_SIGNAL
                             : kind == 'c' ? SPINE_PASSIVE_CANCEL
                             : kind == 'x' ? SPINE_PASSIVE_EXPIRY
                                           : SPINE_PASSIVE_MOVED;
    return spine_passive_wake(eng, id, ev); /* passive: its row is loaded */
  }
  switch (kind) {
    case 's':
      spine_ctx_signal_arrived(wf);
      break;
    case 'c':
      spine_wf_cancel(wf);
      break;
    case 'x':
      spine_wf_expire(wf);
      break;
    default: /* 'm': its claim moved. Idle: dropped now; else its next op's fence finds out. */
      if (((wf->phase == SPINE_WF_PHASE_TIMER || wf->phase == SPINE_WF_PHASE_SIGNAL) &&
           !wf->op_inflight) ||
          spine_wf_strand_idle(wf))
        spine_wf_lost(wf, "an operator migrated or superseded it");
  }
  return 1;
}

static void on_notify(void *data, const char *channel, const char *payload) {
  spine_engine *eng = data;
  for (int i = 0; i < eng->nchannels; i++)
    if (!strcmp(channel, eng->channels[i].name)) {
      eng->channels[i].cb(eng->channels[i].data, channel, payload);
      return;
    }
  if (payload[0] == 'k' && payload[1] == ':') {
    spine_clock_marker(eng, payload + 2);
    return;
  }
  if (payload[0] == 'h' && payload[1] == ':') {
    char *rest;
    if (strtoll(payload + 2, &rest, 10) == eng->worker && *rest == ':')
      eng->hb_heard = strtoull(rest + 1, NULL, 10);
    return;
  }
  eng->clk.foreign++;
  if (payload[0] && strchr("scxm", payload[0]) && payload[1] == ':' &&
      tell(eng, payload[0], payload + 2))
    return;
  spine_sched_claim(eng);
}

/* ---- signals scripted on the virtual clock ----
 *
 * Each is a deadline in the clock's heap, so the virtual clock stops at it as at a sleep's end.
 * When it is due it is stored as `spine signal` stores one (SIGNAL_SEND, at virtual time), and
 * the workflow hears of it at once, not by the NOTIFY: the virtual clock jumps on as soon as
 * the store is idle, before a notification could come back. */

typedef struct spine_engine_script {
  spine_timer timer; /* first: the timer's owner */
  spine_engine *eng;
  char id[80];
  char *name, *payload;
  spine_op op;
  struct spine_engine_script *next;
} script;

static void script_sent(spine_op *op) {
  script *s = op->data;
  spine_engine *eng = s->eng;
  if (eng->stopping) return; /* the run ended first: nobody is left to hear it */
  if (op->status) {
    spine_log_error("scheduler", "cannot deliver a scripted signal", "workflow", s->id, "error",
                    spine_op_error(op)->msg, NULL);
    return;
  }
  if (!tell(eng, 's', s->id)) spine_sched_claim(eng);
}

static void script_due(spine_timer *t) {
  script *s = (script *)t;
  spine_op *op = &s->op;
  spine_op_reset(op);
  spine_clock_op(s->eng, op);
  spine_op_stmt(op, SPINE_SQL_SIGNAL_SEND, 0);
  spine_op_param(op, s->id);
  spine_op_param(op, s->name);
  spine_op_param(op, s->payload);
  op->cb = script_sent;
  op->data = s;
  spine_store_submit(s->eng->store, op);
}

int spine_engine_signal_at(spine_engine *eng, const char *id, int64_t at_ms, const char *name,
                           const char *payload_json, spine_err *e) {
  if (!eng->o.virtual_clock)
    return spine_err_set(e, SPINE_EINVAL, NULL, "signal-at", "only on the virtual clock");
  script *s = calloc(1, sizeof *s);
  if (s) {
    s->name = strdup(name);
    s->payload = strdup(payload_json ? payload_json : "{}");
  }
  if (!s || !s->name || !s->payload) {
    if (s) free(s->name), free(s->payload);
    free(s);
    return spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "out of memory");
  }
  s->eng = eng;
  snprintf(s->id, sizeof s->id, "%s", id);
  spine_timer_init(&s->timer, script_due);
  s->next = eng->scripts;
  eng->scripts = s;
  spine_clock_add(eng, &s->timer, at_ms);
  return 0;
}

static void scripts_free(spine_engine *eng) {
  for (script *s = eng->scripts, *next; s; s = next) {
    next = s->next;
    spine_clock_remove(eng, &s->timer);
    spine_op_free(&s->op);
    free(s->name);
    free(s->payload);
    free(s);
  }
  eng->scripts = NULL;
}

/* ---- heartbeats: keep our lease, reap dead workers ---- */

static void work_notified(spine_op *op) {
  spine_engine *eng = op->data;
  eng->hb_busy = 0;
}

static void heartbeat_done(spine_op *op) {
  spine_engine *eng = op->data;
  eng->hb_busy = 0;
  if (op->status) {
    spine_log_error("scheduler", "heartbeat failed", "error", spine_op_error(op)->msg, NULL);
    return;
  }
  eng->hb_sent = eng->hb_next;
  PGresult *mine = spine_op_result(op, 0);
  if (mine && PQntuples(mine) == 0) {
    /* Reaped: our lease ran out (we hung, or were cut off) and our workflows moved on. Start
     * over as a new worker, as after a lost connection: nothing in memory is ours any more. */
    spine_log_error("scheduler", "this worker's lease was taken: dropping its workflows", NULL);
    spine_store_lose(eng->store, "lease lost");
    return;
  }
  PGresult *reaped = spine_op_result(op, 3), *dropped = spine_op_result(op, 4);
  if (dropped) eng->counts.workers_lost += (uint64_t)PQntuples(dropped);
  if (reaped) eng->counts.taken_over += (uint64_t)PQntuples(reaped);
  if (reaped && PQntuples(reaped) > 0) {
    char n[16];
    snprintf(n, sizeof n, "%d", PQntuples(reaped));
    spine_log_info("scheduler", "took over the workflows of dead workers", "workflows", n, NULL);
    spine_op_reset(op);
    spine_op_stmt(op, SPINE_SQL_NOTIFY_WORK, 0);
    op->cb = work_notified;
    eng->hb_busy = 1;
    spine_store_submit(eng->store, op);
    spine_sched_claim(eng);
  }
}

static void on_heartbeat(uv_timer_t *t) {
  spine_engine *eng = t->data;
  spine_sched_evict_idle(eng);
  if (eng->hb_busy || eng->stopping) return;
  if (eng->serving && eng->hb_sent >= 2 && eng->hb_heard + 2 <= eng->hb_sent) {
    /* Two heartbeats committed since the last one we heard: notifications no longer reach us,
     * and so neither would signals or new cases. */
    spine_store_lose(eng->store, "the session connection stopped hearing notifications");
    return;
  }
  eng->hb_busy = 1;
  spine_op *op = &eng->hb_op;
  spine_op_reset(op);
  spine_op_stmt(op, SPINE_SQL_WORKER_HEARTBEAT, 1);
  spine_op_param_int(op, eng->worker);
  spine_op_param_int(op, eng->o.lease_ms);
  /* Dead or hung workers: their sessions ended first (a hung one may hold an open transaction's
   * locks; a killed one's may still be committing a batch), and only once every one of them is
   * gone are their workflows freed: no transaction of a former owner can commit after another
   * worker claimed. Then the workers that own nothing any more are forgotten. The kill waits (up
   * to 2 s) for the sessions to exit, so the heartbeat travels alone, holding up no batch. */
  spine_op_stmt(op, SPINE_SQL_WORKERS_KILL, 0);
  spine_op_param_int(op, eng->worker);
  spine_op_stmt(op, SPINE_SQL_STAT_REFRESH, 0);
  spine_op_stmt(op, SPINE_SQL_WORKERS_REAP, 1);
  spine_op_param_int(op, eng->worker);
  spine_op_stmt(op, SPINE_SQL_WORKERS_DROP, 1);
  spine_op_param_int(op, eng->worker);
  char mark[64];
  eng->hb_next = eng->hb_sent + 1;
  snprintf(mark, sizeof mark, "h:%lld:%llu", (long long)eng->worker,
           (unsigned long long)eng->hb_next);
  spine_op_stmt(op, SPINE_SQL_NOTIFY_MARK, 0);
  spine_op_param(op, mark);
  op->solo = 1;
  op->cb = heartbeat_done;
  op->data = eng;
  spine_store_submit(eng->store, op);
}

/* ---- setup ---- */

/* Runs the compensations in reverse order; `mark` records each as a step first. */
static const char runner_src[] = "local comps, mark = ...\n"
                                 "for i = #comps, 1, -1 do\n"
                                 "  mark(i)\n"
                                 "  comps[i]()\n"
                                 "end\n";

/* What the engine keeps in its Lua state: the workflow registry, ctx, the compensation runner. */
void spine_engine_lua_setup(spine_engine *eng) {
  lua_State *L = eng->L;
  lua_newtable(L);
  eng->wfs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  spine_ctx_open(L);
  eng->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (luaL_loadbufferx(L, runner_src, sizeof runner_src - 1, "=compensations", "t")) abort();
  eng->runner_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

static int register_worker(spine_engine *eng, spine_err *e) {
  PGconn *pg = spine_store_session(eng->store);
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  char pid[16], lease[24], backends[MAX_BACKENDS * 12 + 4] = "{";
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  snprintf(lease, sizeof lease, "%lld", (long long)eng->o.lease_ms);
  int pids[MAX_BACKENDS];
  int n = spine_store_backends(eng->store, pids, MAX_BACKENDS);
  for (int i = 0; i < n; i++) {
    size_t len = strlen(backends);
    snprintf(backends + len, sizeof backends - len, "%s%d", i ? "," : "", pids[i]);
  }
  strcat(backends, "}");
  const char *params[4] = {host, pid, lease, backends};
  /* The row and the session's advisory lock appear together: no one sees us without it. Its
   * connections opened before the row (registered_at): a reaper ends exactly those. */
  PGresult *r = PQexec(pg, "BEGIN");
  PQclear(r);
  r = PQexecParams(pg,
                   "WITH w AS (INSERT INTO spine.workers (host, pid, lease_until, backends)"
                   " VALUES ($1, $2, now() + $3 * interval '1 ms', $4::int[]) RETURNING id)"
                   " SELECT id, pg_advisory_lock(7780, id::int4) FROM w",
                   4, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    spine_err_set(e, SPINE_EDB, "database", NULL, "cannot register worker: %s",
                  PQresultErrorMessage(r));
    PQclear(r);
    r = PQexec(pg, "ROLLBACK");
    PQclear(r);
    return SPINE_EDB;
  }
  int64_t prev = eng->worker;
  eng->worker = atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  if (prev) {
    /* Our former identity (before a lost connection) is dead for sure: its lease ends now, so
     * the next reaping ends its sessions (a blackholed one may live on in the server) and frees
     * its workflows without waiting for the lease to run out. */
    char old[24];
    snprintf(old, sizeof old, "%lld", (long long)prev);
    const char *p1[1] = {old};
    r = PQexecParams(pg, "UPDATE spine.workers SET lease_until = '-infinity' WHERE id = $1", 1,
                     NULL, p1, NULL, NULL, 0);
    PQclear(r);
  }
  eng->hb_next = eng->hb_sent = eng->hb_heard = 0;
  r = PQexec(pg, "COMMIT");
  PQclear(r);
  return 0;
}

static int migrate(const char *conninfo, spine_err *e) {
  PGconn *c = PQconnectdb(conninfo);
  int rc;
  if (PQstatus(c) != CONNECTION_OK)
    rc = spine_err_set(e, SPINE_EDB, "database", NULL, "cannot connect: %s", PQerrorMessage(c));
  else
    rc = spine_migrate(c, NULL, e);
  PQfinish(c);
  return rc;
}

/* ---- no adapters: the port of an engine given none, every provider unknown ---- */

static int no_call(void *impl, const spine_provider_request *r, spine_provider_cb cb, void *data,
                   spine_provider_call **out, spine_err *e) {
  (void)impl, (void)cb, (void)data;
  if (out) *out = NULL;
  return spine_err_set(e, SPINE_ENOTFOUND, "providers", "provider", "no provider \"%s\"",
                       r->provider ? r->provider : "(null)");
}

static void no_cancel(void *impl, spine_provider_call *c) {
  (void)impl, (void)c;
}

static int no_has(void *impl, const char *provider) {
  (void)impl, (void)provider;
  return 0;
}

static void no_set_clock(void *impl, int64_t (*now_ms)(void *data), void *data) {
  (void)impl, (void)now_ms, (void)data;
}

static const spine_provider_port no_providers = {NULL, no_call, no_cancel, no_has, no_set_clock};

int spine_engine_new(uv_loop_t *loop, const spine_engine_opts *opts, spine_engine **out,
                     spine_err *e) {
  spine_intents_init();
  spine_engine *eng = calloc(1, sizeof *eng);
  if (!eng) return SPINE_ENOMEM;
  eng->loop = loop;
  eng->o = *opts;
  if (!eng->o.pool) eng->o.pool = 4;
  if (!eng->o.instructions) eng->o.instructions = 50 * 1000 * 1000;
  if (!eng->o.mem_limit) eng->o.mem_limit = 64 << 20;
  if (!eng->o.playbooks) eng->o.playbooks = "playbooks";
  if (!eng->o.lease_ms) eng->o.lease_ms = 10000;
  eng->vnow = spine_clock_real();
  *out = NULL;

  eng->L = spine_sandbox_new_state(0);
  if (!eng->L) {
    free(eng);
    return spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "cannot create the Lua state");
  }
  if (!eng->o.providers.call) eng->o.providers = no_providers;
  eng->providers = &eng->o.providers;
  /* Migrate first: the pool prepares its statements against the tables. */
  int rc = migrate(opts->conninfo, e);
  if (!rc) rc = spine_store_open(loop, opts->conninfo, eng->o.pool, &eng->store, e);
  if (!rc) rc = spine_store_session_open(eng->store, opts->conninfo, e);
  if (!rc) rc = register_worker(eng, e);
  if (!rc) rc = spine_clock_setup(eng, e);
  if (rc) {
    if (eng->store) spine_store_close(eng->store);
    uv_run(loop, UV_RUN_DEFAULT); /* let the store's handles close */
    lua_close(eng->L);
    free(eng);
    return rc;
  }
  spine_store_on_idle(eng->store, spine_clock_store_idle, eng);
  spine_store_set_timeout(eng->store, eng->o.db_timeout_ms);
  eng->providers->set_clock(eng->providers->impl, spine_clock_of, eng);
  spine_engine_lua_setup(eng);
  uint64_t seed = (uint64_t)spine_clock_real() ^ ((uint64_t)getpid() << 40);
  eng->rng[0] = seed | 1;
  eng->rng[1] = seed * 0x9E3779B97F4A7C15ull;
  uv_timer_init(loop, &eng->timer);
  uv_timer_init(loop, &eng->wake);
  uv_timer_init(loop, &eng->heartbeat);
  uv_timer_init(loop, &eng->vtick);
  uv_timer_init(loop, &eng->reconnect);
  uv_idle_init(loop, &eng->defer);
  uv_timer_init(loop, &eng->pas.sweep);
  eng->pas.sweep.data = eng;
  eng->defer.data = eng;
  eng->timer.data = eng->wake.data = eng->heartbeat.data = eng->vtick.data = eng;
  eng->reconnect.data = eng;
  spine_op_init(&eng->claim_op);
  spine_op_init(&eng->hb_op);
  spine_op_init(&eng->wake_op);
  spine_op_init(&eng->clk.op);
  *out = eng;
  return 0;
}

static int listen_one(PGconn *pg, const char *channel, spine_err *e) {
  char sql[96];
  snprintf(sql, sizeof sql, "LISTEN %s", channel);
  PGresult *r = PQexec(pg, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    spine_err_set(e, SPINE_EDB, "database", NULL, "LISTEN %s failed: %s", channel,
                  PQresultErrorMessage(r));
    PQclear(r);
    return SPINE_EDB;
  }
  PQclear(r);
  return 0;
}

static int listen_session(spine_engine *eng, spine_err *e) {
  PGconn *pg = spine_store_session(eng->store);
  int rc = listen_one(pg, "spine", e);
  for (int i = 0; i < eng->nchannels && !rc; i++)
    rc = listen_one(pg, eng->channels[i].name, e);
  if (rc) return rc;
  spine_store_session_listen(eng->store, on_notify, eng);
  return 0;
}

int spine_engine_listen(spine_engine *eng, const char *channel, spine_notify_cb cb, void *data) {
  if (eng->serving || eng->nchannels == MAX_CHANNELS || strlen(channel) >= 64) return SPINE_EINVAL;
  for (const char *p = channel; *p; p++)
    if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) return SPINE_EINVAL;
  snprintf(eng->channels[eng->nchannels].name, 64, "%s", channel);
  eng->channels[eng->nchannels].cb = cb;
  eng->channels[eng->nchannels].data = data;
  eng->nchannels++;
  return 0;
}

void spine_engine_on_connection(spine_engine *eng, void (*lost)(void *data),
                                void (*back)(void *data), void *data) {
  eng->lost_cb = lost;
  eng->back_cb = back;
  eng->conn_data = data;
}

/* Heartbeat (which reaps dead workers at once: after a reconnect, our former self) and claims. */
static void start_work(spine_engine *eng) {
  /* Every engine keeps its lease (a long `spine run` must not look dead); reaping at once
   * lets a restarted worker take over its old work now. */
  uint64_t every = (uint64_t)eng->o.lease_ms / 5;
  on_heartbeat(&eng->heartbeat);
  uv_timer_start(&eng->heartbeat, on_heartbeat, every, every);
  spine_sched_claim(eng);
}

static void on_reconnect(uv_timer_t *t) {
  spine_engine *eng = t->data;
  if (eng->stopping) return;
  spine_err e;
  spine_err_clear(&e);
  int rc = spine_store_reconnect(eng->store, &e);
  /* A new worker identity: the old one's workflows are released by its reaping, like those
   * of a worker that died; the database, not memory, says where each one is. */
  if (!rc) rc = register_worker(eng, &e);
  if (!rc) rc = listen_session(eng, &e);
  if (rc) {
    if (!spine_store_idle(eng->store) || e.code != SPINE_ETRANSIENT)
      spine_log_warn("scheduler", "cannot reconnect yet", "error", e.msg, NULL);
    spine_store_lose(eng->store, "setup after reconnect failed"); /* no-op while still lost */
    eng->reconnect_ms =
        eng->reconnect_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : eng->reconnect_ms * 2;
    uv_timer_start(&eng->reconnect, on_reconnect, (uint64_t)eng->reconnect_ms, 0);
    return;
  }
  char worker[24];
  snprintf(worker, sizeof worker, "%lld", (long long)eng->worker);
  spine_log_info("scheduler", "reconnected", "worker", worker, NULL);
  start_work(eng);
  if (eng->back_cb) eng->back_cb(eng->conn_data);
}

/* The store lost its connections and forgot every op in flight: drop every workflow from
 * memory (nothing of them is lost: the database has each one's history and lease) and
 * reconnect. Runs from the loop, never inside a resume or a store callback. */
static void on_store_lost(void *data) {
  spine_engine *eng = data;
  if (eng->stopping) return;
  uv_timer_stop(&eng->timer);
  uv_timer_stop(&eng->wake);
  uv_timer_stop(&eng->heartbeat);
  uv_timer_stop(&eng->vtick);
  uv_timer_stop(&eng->pas.sweep);
  spine_version_forget_waiters(eng); /* each waiting workflow is in the registry: freed below */
  int n;
  spine_wf **all = spine_wf_all(eng, &n);
  for (int i = 0; i < n; i++)
    spine_wf_free(all[i]);
  free(all);
  n += spine_passive_count(eng);
  spine_passive_forget_all(eng);
  eng->claim_busy = eng->claim_again = eng->hb_busy = eng->wake_busy = 0;
  char dropped[16];
  snprintf(dropped, sizeof dropped, "%d", n);
  spine_log_warn("scheduler", "database connection lost: workflows left memory, reconnecting",
                 "workflows", dropped, NULL);
  eng->reconnect_ms = RECONNECT_MIN_MS;
  uv_timer_start(&eng->reconnect, on_reconnect, RECONNECT_MIN_MS, 0);
  if (eng->lost_cb) eng->lost_cb(eng->conn_data);
}

int spine_engine_serve(spine_engine *eng, spine_err *e) {
  int rc = listen_session(eng, e);
  if (rc) return rc;
  eng->serving = 1;
  /* A worker that serves claims can drop its workflows and reconnect; a `spine run` cannot
   * (its one workflow lives only in it) and exits instead. */
  if (eng->o.claims) spine_store_on_lost(eng->store, on_store_lost, eng);
  start_work(eng);
  return 0;
}

static void release_all(spine_engine *eng) {
  PGconn *pg = spine_store_session(eng->store);
  if (!pg) return;
  char worker[24];
  snprintf(worker, sizeof worker, "%lld", (long long)eng->worker);
  const char *params[1] = {worker};
  PGresult *r =
      PQexecParams(pg, spine_sql_text(SPINE_SQL_WF_RELEASE_ALL), 1, NULL, params, NULL, NULL, 0);
  PQclear(r);
  r = PQexecParams(pg, "DELETE FROM spine.workers WHERE id = $1", 1, NULL, params, NULL, NULL, 0);
  PQclear(r);
  r = PQexec(pg, "SELECT pg_notify('spine', 'w')");
  PQclear(r);
}

static void cancel_provider_calls(spine_engine *eng) {
  int n;
  spine_wf **all = spine_wf_all(eng, &n);
  for (int i = 0; i < n; i++)
    spine_ctx_provider_cancel(all[i]);
  free(all);
}

void spine_engine_stop(spine_engine *eng) {
  if (eng->stopping) return;
  eng->stopping = 1;
  spine_clock_stop(eng);
  uv_timer_stop(&eng->timer);
  uv_timer_stop(&eng->wake);
  uv_timer_stop(&eng->heartbeat);
  uv_timer_stop(&eng->vtick);
  uv_timer_stop(&eng->reconnect);
  spine_sched_drop_deferred(eng);
  /* Blocking is fine here: the loop serves nothing more. The session connection is idle. */
  release_all(eng);
  uv_close((uv_handle_t *)&eng->reconnect, NULL);
  uv_close((uv_handle_t *)&eng->defer, NULL);
  uv_close((uv_handle_t *)&eng->timer, NULL);
  uv_close((uv_handle_t *)&eng->wake, NULL);
  uv_close((uv_handle_t *)&eng->heartbeat, NULL);
  uv_close((uv_handle_t *)&eng->vtick, NULL);
  uv_close((uv_handle_t *)&eng->pas.sweep, NULL);
  spine_store_close(eng->store);
  /* The adapters are the assembler's, freed after this: cancel our calls in flight (their
   * callbacks never run), give the breakers their own clock back, and let go of the port. */
  if (eng->providers) {
    cancel_provider_calls(eng);
    eng->providers->set_clock(eng->providers->impl, NULL, NULL);
    eng->providers = NULL;
  }
}

void spine_engine_free(spine_engine *eng) {
  int n;
  spine_wf **all = spine_wf_all(eng, &n);
  for (int i = 0; i < n; i++)
    spine_wf_free(all[i]); /* a provider call it had ended with the adapters */
  free(all);
  spine_passive_forget_all(eng);
  spine_version_free_all(eng);
  spine_op_free(&eng->claim_op);
  spine_op_free(&eng->hb_op);
  spine_op_free(&eng->wake_op);
  spine_op_free(&eng->clk.op);
  scripts_free(eng);
  spine_timers_free(&eng->timers);
  lua_close(eng->L);
  free(eng);
}

void spine_engine_on_end(spine_engine *eng, spine_engine_end_cb cb, void *data) {
  eng->end_cb = cb;
  eng->end_data = data;
}

void spine_engine_on_begin(spine_engine *eng, void (*cb)(void *data, const spine_wf *wf),
                           void *data) {
  eng->begin_cb = cb;
  eng->begin_data = data;
}

int spine_engine_live(const spine_engine *eng) {
  return eng->live + spine_passive_count(eng);
}

int spine_engine_passive(const spine_engine *eng) {
  return spine_passive_count(eng);
}

uint64_t spine_engine_steps(const spine_engine *eng) {
  return eng->steps;
}

const spine_engine_counts *spine_engine_counts_get(const spine_engine *eng) {
  return &eng->counts;
}

int64_t spine_engine_worker(const spine_engine *eng) {
  return eng->worker;
}

lua_State *spine_engine_lua(spine_engine *eng) {
  return eng->L;
}

uv_loop_t *spine_engine_loop(spine_engine *eng) {
  return eng->loop;
}

spine_store *spine_engine_store(spine_engine *eng) {
  return eng->store;
}

void spine_engine_push_ctx(spine_engine *eng, lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, eng->ctx_ref);
}

double spine_engine_random(spine_engine *eng) {
  /* xorshift128+, top 53 bits */
  uint64_t s1 = eng->rng[0];
  const uint64_t s0 = eng->rng[1];
  eng->rng[0] = s0;
  s1 ^= s1 << 23;
  eng->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
  return (double)((eng->rng[1] + s0) >> 11) * (1.0 / 9007199254740992.0);
}

int spine_engine_advance(spine_engine *eng, int64_t to_ms, spine_engine_clock_cb cb, void *data) {
  return spine_clock_advance(eng, to_ms, cb, data);
}

int64_t spine_engine_now(spine_engine *eng, int *manual) {
  if (manual) *manual = eng->o.manual_clock;
  return spine_clock_now(eng);
}
