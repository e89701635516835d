/* spine-bench, run as `spine bench`, a tool beside the spine executable, not part of it: the
 * figures of shared/bench/README.md ("Metrics"), measured on this machine's database (embedded
 * or $SPINE_DATABASE_URL), printed as the JSON lines of bench/run-peers with "system":"spine",
 * and the hot-key figures of docs/operations.md. It reports figures; it never fails on timing,
 * and a phase that may collapse is bounded (--phase-limit). Its recovery figure kill -9s the
 * `spine serve` beside it. */
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "bench_record.h"
#include "catalog.h"
#include "cli.h"
#include "duration.h"
#include "engine.h"
#include "intents.h"
#include "migrate.h"
#include "pgconn.h"
#include "server.h"
#include "sha256.h"

static const char *const spec[] = {
    "quick", "json", "only=", "phase-limit=", "duration=", "pool=", NULL};
static const char usage[] =
    "usage: spine bench [--quick] [--json] [--only NAME,...] [--phase-limit SECONDS]\n"
    "                   [--duration D] [--pool N]\n"
    "  Measures durable steps/s, intent steps/s, 10-step latency, start latency, memory per\n"
    "  waiting workflow and recovery after kill -9, as shared/bench/README.md defines them,\n"
    "  and the hot-key figures: ApplyManualCredit steps/s with one customer per workflow\n"
    "  (real_intent_steps_per_s) and with 5 customers for all (hot_intent_steps_per_s), and\n"
    "  the deadlocks the database counted meanwhile (docs/operations.md, Measuring).\n"
    "  --only: steps, intents, real_intents, hot_intents, latency, memory, recovery (the\n"
    "  hot-key figures bring intent_steps_per_s along). --phase-limit: each hot-key phase\n"
    "  stops waiting after this long and reports what completed (default 120, quick 60).\n"
    "  --duration: how long each repetition of the throughput figures and the latency\n"
    "  figures runs at least, after a warm-up of a quarter of it (default 2s, quick 0.5s);\n"
    "  the throughput figures are the median of 3 repetitions (quick: 1), with the spread\n"
    "  ((max - min) / median) and every repetition's rate in params.\n"
    "  --pool: the engine's database connections (default 4; docs/performance.md, Pool size).\n";

static const char *const names[] = {"steps",   "intents", "real_intents", "hot_intents",
                                    "latency", "memory",  "recovery",     NULL};

static const char steps_src[] = "return { name = 'bench_steps', run = function(ctx, input)\n"
                                "  for i = 1, 10 do ctx.step('s', function() return i end) end\n"
                                "  return true\nend }\n";
static const char intents_src[] = "return { name = 'bench_intents', run = function(ctx, input)\n"
                                  "  for i = 1, 10 do ctx.intent('BenchRecord', { n = i }) end\n"
                                  "  return true\nend }\n";
/* The hot-key workload: 10 manual credits to the customer of the input. */
static const char credits_src[] =
    "return { name = 'bench_credits', run = function(ctx, input)\n"
    "  for i = 1, 10 do\n"
    "    ctx.intent('ApplyManualCredit', { customer_id = input.customer_id, amount_cents = 100,\n"
    "                                      reason = 'bench credit ' .. i })\n"
    "  end\n"
    "  return true\nend }\n";
static const char customer_src[] =
    "return { name = 'bench_customer', run = function(ctx, input)\n"
    "  ctx.intent('RegisterCustomer', { customer_id = input.customer_id, name = 'Bench',\n"
    "                                   email = 'bench@example.org' })\n"
    "  return true\nend }\n";
static const char wait_src[] = "return { name = 'bench_wait', run = function(ctx, input)\n"
                               "  ctx.step('s', function() return 1 end)\n"
                               "  return ctx.wait('message', { timeout = '24h' })\nend }\n";

typedef struct bench {
  uv_loop_t loop;
  spine_server_engine se; /* the engine and its adapters */
  char dir[64];
  char conninfo[1024];
  /* conninfo with application_name = appname: the engine's connections, told apart in
   * pg_stat_activity (see settled_deadlocks) */
  char engine_conninfo[1200];
  char appname[40];
  char customer_prefix[40]; /* "bench-<run>-": this run's customers */
  int json;
  int quick;
  int64_t passivate_after_ms; /* the engine's (SPINE_PASSIVATE_AFTER_MS, as `spine serve`) */
  int ended, begun;
  int failed;          /* workflows that ended without a result */
  uv_timer_t deadline; /* bounds a hot-key phase */
  int timed_out;
  double limit_s;
  double duration_s; /* --duration: each repetition runs at least this long */
  int pool;          /* --pool: the engine's connections (default 4) */
  /* per-workflow start times for latency: only one in flight then */
  double started_at, begun_at, ended_at;
} bench;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_end(void *data, const spine_wf *wf, const char *r, const char *e) {
  (void)wf, (void)r;
  bench *b = data;
  b->ended++;
  if (e) b->failed++;
  b->ended_at = now_s();
}

static void on_begin(void *data, const spine_wf *wf) {
  (void)wf;
  bench *b = data;
  b->begun++;
  b->begun_at = now_s();
}

static void emit(bench *b, const char *metric, double value, const char *unit, const char *params) {
  if (b->json)
    printf(
        "{\"system\":\"spine\",\"metric\":\"%s\",\"value\":%.2f,\"unit\":\"%s\",\"params\":%s}\n",
        metric, value, unit, params);
  else
    printf("%-28s %12.2f %-4s %s\n", metric, value, unit, params);
  fflush(stdout);
}

static void write_file(const char *path, const char *src) {
  FILE *f = fopen(path, "w");
  if (!f) return;
  fputs(src, f);
  fclose(f);
}

/* Starts n workflows of `playbook` and runs the loop until all have ended. */
static int run_batch(bench *b, const char *playbook, int n, spine_err *e) {
  int target = b->ended + n;
  char id[80];
  for (int i = 0; i < n; i++)
    if (spine_engine_start(b->se.engine, playbook, NULL, id, e)) return -1;
  while (b->ended < target)
    uv_run(&b->loop, UV_RUN_ONCE);
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  int rank = (int)(p / 100.0 * n + 0.999999); /* nearest rank */
  if (rank < 1) rank = 1;
  return v[rank - 1];
}

/* Runs batches of `batch` workflows back to back until at least `seconds` passed; the rate of
 * steps per second, and in *workflows how many ran. */
static double timed_batches(bench *b, const char *path, int batch, double seconds, int *workflows,
                            spine_err *e) {
  double t0 = now_s(), t;
  int n = 0;
  do {
    if (run_batch(b, path, batch, e)) return -1;
    n += batch;
    t = now_s() - t0;
  } while (t < seconds);
  *workflows = n;
  return 10.0 * n / t;
}

/* Statistics of tables in use, as autovacuum keeps them in production: a plan made while the
 * tables looked empty (a fresh or cleaned-up database) would scan them whole at every step
 * (docs/performance.md, "A plan that degrades"). ANALYZE also invalidates the plans made. */
static int analyze(bench *b, spine_err *e) {
  PGconn *c = PQconnectdb(b->conninfo);
  PGresult *r =
      PQstatus(c) == CONNECTION_OK ? PQexec(c, "ANALYZE spine.workflows, spine.steps") : NULL;
  int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) spine_err_set(e, SPINE_EDB, "bench", NULL, "ANALYZE failed: %s", PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  return ok ? 0 : SPINE_EDB;
}

static int throughput(bench *b, const char *name, const char *metric, spine_err *e) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s.lua", b->dir, name);
  int batch = b->quick ? 200 : 500, reps = b->quick ? 1 : 3, n;
  /* a warm-up: connections made, statements prepared, the playbook compiled, caches warm */
  if (timed_batches(b, path, 100, b->duration_s / 4, &n, e) < 0 || analyze(b, e)) return -1;
  double rate[3];
  char runs[256] = "", rates[256] = "";
  for (int r = 0; r < reps; r++) {
    if ((rate[r] = timed_batches(b, path, batch, b->duration_s, &n, e)) < 0) return -1;
    snprintf(runs + strlen(runs), sizeof runs - strlen(runs), "%s%d", r ? "," : "", n);
    snprintf(rates + strlen(rates), sizeof rates - strlen(rates), "%s%.1f", r ? "," : "", rate[r]);
  }
  double sorted[3];
  memcpy(sorted, rate, sizeof rate);
  qsort(sorted, (size_t)reps, sizeof sorted[0], cmp_double);
  double median = sorted[reps / 2], spread = (sorted[reps - 1] - sorted[0]) / median;
  char params[1024];
  snprintf(params, sizeof params,
           "{\"batch\":%d,\"in_flight\":%d,\"steps_per_workflow\":10,\"reps\":%d,"
           "\"duration_s\":%g,\"warmup_s\":%g,\"workflows\":[%s],\"rates\":[%s],"
           "\"spread\":%.3f,\"value\":\"median\",\"pool\":%d}",
           batch, batch, reps, b->duration_s, b->duration_s / 4, runs, rates, spread, b->pool);
  emit(b, metric, median, "1/s", params);
  if (!strcmp(metric, "steps_per_s")) emit(b, "workflows_per_s", median / 10, "1/s", params);
  return 0;
}

static int latency(bench *b, spine_err *e) {
  char path[128];
  snprintf(path, sizeof path, "%s/bench_steps.lua", b->dir);
  /* one workflow at a time: at least `least` of them, and for at least the duration */
  int least = b->quick ? 50 : 200, cap = least, n = 0;
  double *lat = malloc((size_t)cap * sizeof *lat), *start = malloc((size_t)cap * sizeof *start);
  if (!lat || !start) abort();
  double t0 = 0;
  for (int i = -10; n < least || now_s() - t0 < b->duration_s; i++) {
    char id[80];
    int target = b->ended + 1;
    if (i == 0) t0 = now_s();
    b->started_at = now_s();
    if (spine_engine_start(b->se.engine, path, NULL, id, e)) return -1;
    while (b->ended < target)
      uv_run(&b->loop, UV_RUN_ONCE);
    if (i < 0) continue; /* the warm-up */
    if (n == cap) {
      cap *= 2;
      lat = realloc(lat, (size_t)cap * sizeof *lat);
      start = realloc(start, (size_t)cap * sizeof *start);
      if (!lat || !start) abort();
    }
    lat[n] = (b->ended_at - b->started_at) * 1000;
    start[n++] = (b->begun_at - b->started_at) * 1000;
  }
  char params[160];
  snprintf(params, sizeof params,
           "{\"workflows\":%d,\"steps_per_workflow\":10,\"duration_s\":%.3f,\"warmup\":10}", n,
           now_s() - t0);
  double l50 = pct(lat, n, 50), l99 = pct(lat, n, 99);
  double s50 = pct(start, n, 50), s99 = pct(start, n, 99);
  emit(b, "latency_10step_p50_ms", l50, "ms", params);
  emit(b, "latency_10step_p99_ms", l99, "ms", params);
  emit(b, "start_latency_p50_ms", s50, "ms", params);
  emit(b, "start_latency_p99_ms", s99, "ms", params);
  free(lat);
  free(start);
  return 0;
}

static long rss_bytes(bench *b) {
  lua_gc(spine_engine_lua(b->se.engine), LUA_GCCOLLECT, 0);
  malloc_trim(0);
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
    fclose(f);
  }
  return res * sysconf(_SC_PAGESIZE);
}

static long min_rss(bench *b) {
  long best = rss_bytes(b);
  for (int i = 0; i < 2; i++) {
    uv_sleep(200);
    long r = rss_bytes(b);
    if (r < best) best = r;
  }
  return best;
}

static void park(bench *b, const char *path, int n) {
  char id[80];
  spine_err e;
  int target = b->begun + n;
  for (int i = 0; i < n; i++)
    spine_engine_start(b->se.engine, path, NULL, id, &e);
  /* parked = its wait is recorded: no workflow has an operation in flight any more */
  while (b->begun < target || !spine_store_idle(spine_engine_store(b->se.engine)))
    uv_run(&b->loop, UV_RUN_ONCE);
}

/* Waits until `n` parked workflows are passive: each becomes so once it waited
 * passivate_after_ms (nothing when passivation is off). Gives up 30 s after that: params say
 * how many were passive then. */
static void settle(bench *b, int n) {
  if (b->passivate_after_ms <= 0) return;
  double give_up = now_s() + (double)b->passivate_after_ms / 1000 + 30;
  while (spine_engine_passive(b->se.engine) < n && now_s() < give_up)
    uv_run(&b->loop, UV_RUN_ONCE);
}

/* Signals every workflow parked here at once (one statement) and runs until all have ended:
 * each is loaded, replayed (passive) or resumed, and ended. Returns how many ended a second
 * from the signals' commit on (0 on an error). */
static double wake_all(bench *b) {
  PGconn *c = PQconnectdb(b->conninfo);
  char sql[300];
  snprintf(sql, sizeof sql,
           "SELECT count(spine.signal_workflow(id, 'message', '{}')) FROM spine.workflows"
           " WHERE process = 'bench_wait' AND status = 'waiting' AND owner = %lld",
           (long long)spine_engine_worker(b->se.engine));
  PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
  int n = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : 0;
  PQclear(r);
  PQfinish(c);
  double t0 = now_s(); /* the signals committed: what follows is the engine's */
  int target = b->ended + n;
  while (b->ended < target)
    uv_run(&b->loop, UV_RUN_ONCE);
  return n ? n / (now_s() - t0) : 0;
}

static int memory(bench *b) {
  char path[128];
  snprintf(path, sizeof path, "%s/bench_wait.lua", b->dir);
  int n = b->quick ? 1000 : 5000;
  lua_State *L = spine_engine_lua(b->se.engine);
  park(b, path, 50);
  settle(b, 50);
  long before = min_rss(b);
  long lua_before = (long)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + lua_gc(L, LUA_GCCOUNTB, 0);
  park(b, path, n);
  settle(b, 50 + n);
  long after = min_rss(b);
  long lua_after = (long)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + lua_gc(L, LUA_GCCOUNTB, 0);
  /* What malloc has in use: far below what rss grew by, freed memory is kept resident by live
   * blocks among it (docs/performance.md, "What was changed" 19). */
  size_t in_use = mallinfo2().uordblks;
  int passive = spine_engine_passive(b->se.engine);
  double woken = wake_all(b);
  char params[420];
  snprintf(params, sizeof params,
           "{\"parked\":%d,\"passive_total\":%d,\"passivate_after_ms\":%lld,\"rss_before\":%ld,"
           "\"rss_after\":%ld,\"lua_bytes_per_workflow\":%ld,\"heap_in_use\":%zu,"
           "\"woken_per_s\":%.0f}",
           n, passive, (long long)b->passivate_after_ms, before, after,
           (lua_after - lua_before) / n, in_use, woken);
  emit(b, "bytes_per_waiting_workflow", (double)(after - before) / n, "B", params);
  return 0;
}

static pid_t spawn_serve(bench *b, const char *exe) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open("/dev/null", O_RDWR);
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    setenv("SPINE_DATABASE_URL", b->conninfo, 1);
    setenv("SPINE_LISTEN", "127.0.0.1:0", 1); /* never collide with a running server */
    execl(exe, exe, "serve", (char *)NULL);
    _exit(127);
  }
  return pid;
}

static long long count_sql(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  long long n = PQresultStatus(r) == PGRES_TUPLES_OK ? atoll(PQgetvalue(r, 0, 0)) : -1;
  PQclear(r);
  return n;
}

static int recovery(bench *b, spine_err *e) {
  int n = b->quick ? 200 : 1000;
  char exe[4096];
  if (spine_cli__beside("spine", exe, sizeof exe))
    return spine_err_set(e, SPINE_EIO, NULL, NULL, "cannot find the spine executable");
  PGconn *c = PQconnectdb(b->conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    PQfinish(c);
    return spine_err_set(e, SPINE_EDB, NULL, NULL, "cannot connect");
  }
  char path[128], hash[65], count[16];
  snprintf(path, sizeof path, "%s/bench_steps.lua", b->dir);
  snprintf(count, sizeof count, "%d", n);
  /* n started cases of bench_steps, as `spine start` leaves them, for the server to claim */
  spine_sha256_hex(steps_src, strlen(steps_src), hash);
  const char *vp[] = {hash, path, steps_src, count};
  PGresult *r = PQexecParams(c,
                             "SELECT count(spine.start_workflow('bench-rec-' || g, 'bench_steps',"
                             " 'bench_steps', $1, '{}', md5(g::text), path => $2, source => $3))"
                             " FROM generate_series(1, $4::int) g",
                             4, NULL, vp, NULL, NULL, 0);
  int inserted = PQresultStatus(r) == PGRES_TUPLES_OK;
  PQclear(r);
  if (!inserted) {
    PQfinish(c);
    return spine_err_set(e, SPINE_EDB, NULL, NULL, "cannot start the recovery workflows");
  }
  pid_t pid = spawn_serve(b, exe);
  r = PQexec(c, "NOTIFY spine, 'w'");
  PQclear(r);
  /* Polled every millisecond, not every 20 as run-peers does: Spine runs a fifth of these
   * steps in less than 20 ms, and the kill must find most of the work still to do. */
  long long fifth = (long long)n * 10 / 5, done = 0;
  while ((done = count_sql(c, "SELECT count(*) FROM spine.steps WHERE workflow_id LIKE"
                              " 'bench-rec-%'")) < fifth &&
         done >= 0)
    uv_sleep(1);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  long long at_kill = count_sql(c, "SELECT count(*) FROM spine.steps WHERE workflow_id LIKE"
                                   " 'bench-rec-%'");
  double t0 = now_s();
  pid = spawn_serve(b, exe);
  while (count_sql(c, "SELECT count(*) FROM spine.workflows WHERE id LIKE 'bench-rec-%'"
                      " AND status = 'completed'") < n)
    uv_sleep(20);
  double took = now_s() - t0;
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  PQfinish(c);
  char params[200];
  snprintf(params, sizeof params,
           "{\"workflows\":%d,\"steps_per_workflow\":10,\"steps_done_at_kill\":%lld}", n, at_kill);
  emit(b, "recovery_s", took, "s", params);
  return 0;
}

/* ---- the engine of the in-process figures ---- */

/* Stops the engine and closes its connections: the workflows it holds are released. */
static void engine_close(bench *b) {
  spine_server_engine_stop(&b->se);
  uv_run(&b->loop, UV_RUN_DEFAULT);
  spine_server_engine_free(&b->se);
}

static int engine_open(bench *b, spine_err *e) {
  spine_engine_opts o = {0};
  o.conninfo = b->engine_conninfo;
  o.pool = b->pool;
  const char *passivate = getenv("SPINE_PASSIVATE_AFTER_MS"); /* as `spine serve` */
  o.passivate_after_ms = passivate ? atoll(passivate) : SPINE_ENGINE_PASSIVATE_AFTER_MS;
  b->passivate_after_ms = o.passivate_after_ms;
  o.quiet = 1;
  if (spine_server_engine_new(&b->loop, &o, NULL, &b->se, e)) return -1;
  if (spine_engine_serve(b->se.engine, e)) {
    engine_close(b);
    return -1;
  }
  spine_engine_on_end(b->se.engine, on_end, b);
  spine_engine_on_begin(b->se.engine, on_begin, b);
  return 0;
}

/* ---- the hot-key figures: ApplyManualCredit on many customers, then on 5 ---- */

#define HOT_WORKFLOWS       300
#define HOT_WORKFLOWS_QUICK 100

static int hot_workflows(const bench *b) {
  return b->quick ? HOT_WORKFLOWS_QUICK : HOT_WORKFLOWS;
}

/* 0..n-1 in an order drawn from a fixed seed (Fisher-Yates over an LCG): the same every run.
 * The phases start their workflows in this order. Started as 0, 1, 2, ... the workflows of
 * the 5 hot customers reach the store round-robin, so the store's batches (the queue split
 * evenly over the pool: 75 ops each, a multiple of 5) all lock the customers in the same
 * order 0..4 and seldom deadlock; whether they do then flips from run to run with timing.
 * Requests do not arrive sorted by customer: the shuffled order is the realistic one, and
 * gives the same picture on every run. */
static void shuffled(int *order, int n) {
  uint32_t seed = 11;
  for (int i = 0; i < n; i++)
    order[i] = i;
  for (int i = n - 1; i > 0; i--) {
    seed = seed * 1664525u + 1013904223u;
    int j = (int)((seed >> 8) % (uint32_t)(i + 1));
    int t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

static void customer_input(const bench *b, int i, char *out, size_t size) {
  snprintf(out, size, "{\"customer_id\":\"%s%d\"}", b->customer_prefix, i);
}

/* One customer per workflow of the phases, registered before any of them is timed. */
static int register_customers(bench *b, spine_err *e) {
  char path[128], input[96], id[80];
  snprintf(path, sizeof path, "%s/bench_customer.lua", b->dir);
  int n = hot_workflows(b), target = b->ended + n, failed = b->failed;
  for (int i = 0; i < n; i++) {
    customer_input(b, i, input, sizeof input);
    if (spine_engine_start(b->se.engine, path, input, id, e)) return -1;
  }
  while (b->ended < target)
    uv_run(&b->loop, UV_RUN_ONCE);
  if (b->failed != failed)
    return spine_err_set(e, SPINE_EDB, "bench", NULL, "%d of %d RegisterCustomer workflows failed",
                         b->failed - failed, n);
  return 0;
}

static void on_deadline(uv_timer_t *t) {
  bench *b = t->data;
  b->timed_out = 1;
}

/* Runs hot_workflows() workflows of bench_credits at once (in shuffled() order), workflow i on
 * customer i % customers, until all have ended or the phase limit passed, and emits the rate
 * of the intent steps committed meanwhile. Past the limit the workflows still running are dropped
 * with the engine (a new one takes over), so that they do not run into the next phase. */
static int credit_phase(bench *b, const char *metric, int customers, spine_err *e) {
  char path[128], input[96], id[80];
  snprintf(path, sizeof path, "%s/bench_credits.lua", b->dir);
  int n = hot_workflows(b), target = b->ended + n, failed = b->failed;
  uint64_t steps = spine_engine_steps(b->se.engine);
  b->timed_out = 0;
  uv_update_time(&b->loop); /* the loop's clock stood still while the engine connected */
  double t0 = now_s();
  uv_timer_start(&b->deadline, on_deadline, (uint64_t)(b->limit_s * 1000), 0);
  int order[HOT_WORKFLOWS];
  shuffled(order, n);
  for (int k = 0; k < n; k++) {
    int i = order[k];
    customer_input(b, i % customers, input, sizeof input);
    if (spine_engine_start(b->se.engine, path, input, id, e)) {
      uv_timer_stop(&b->deadline);
      return -1;
    }
  }
  while (b->ended < target && !b->timed_out)
    uv_run(&b->loop, UV_RUN_ONCE);
  double took = now_s() - t0;
  steps = spine_engine_steps(b->se.engine) - steps;
  uv_timer_stop(&b->deadline);
  int ended = n - (target - b->ended), unfinished = b->failed - failed;
  char params[600];
  snprintf(
      params, sizeof params,
      "{\"workflows\":%d,\"customers\":%d,\"in_flight\":%d,\"steps_per_workflow\":10,"
      "\"intent\":\"ApplyManualCredit\",\"pool\":%d,\"elapsed_s\":%.3f,\"steps_committed\":%llu,"
      "\"start_order\":\"shuffled\",\"completed\":%d,\"ended_without_result\":%d,"
      "\"timed_out\":%s,\"limit_s\":%g%s}",
      n, customers, n, b->pool, took, (unsigned long long)steps, ended - unfinished, unfinished,
      b->timed_out ? "true" : "false", b->limit_s,
      b->quick ? ",\"quick\":true,\"note\":\"quick: 100 workflows, not 300\"" : "");
  emit(b, metric, took > 0 ? (double)steps / took : 0, "1/s", params);
  if (!b->timed_out) return 0;
  engine_close(b);
  return engine_open(b, e);
}

/* pg_stat_database.deadlocks of the bench database, once every deadlock the engine's
 * connections met is in it. A backend counts a deadlock it detects in its own pending
 * statistics and PostgreSQL 15 flushes those to shared memory at most once a second while it
 * works, and up to 10 s later once it is idle (pgstat_report_stat), so two equal reads in a
 * row prove nothing. But a backend always flushes in its exit hook, which runs before it
 * leaves pg_stat_activity (before_shmem_exit, then on_shmem_exit). So the condition is: the
 * engine is closed and none of its backends (our application_name) is left; polled, bounded
 * by 30 s (`settled` = 0 then). pg_stat_clear_snapshot() makes the read a fresh one. */
static long long settled_deadlocks(bench *b, PGconn *c, int *settled) {
  const char *vp[] = {b->appname};
  double until = now_s() + 30;
  *settled = 0;
  for (;;) {
    PGresult *r = PQexecParams(c,
                               "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
                               " AND pid <> pg_backend_pid()",
                               1, NULL, vp, NULL, NULL, 0);
    long long left = PQresultStatus(r) == PGRES_TUPLES_OK ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    if (left == 0) *settled = 1;
    if (left <= 0 || now_s() > until) break;
    uv_sleep(10);
  }
  PQclear(PQexec(c, "SELECT pg_stat_clear_snapshot()"));
  return count_sql(c, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()");
}

/* real_intent_steps_per_s and hot_intent_steps_per_s on an engine of their own, and the
 * deadlocks counted from before it opened to after it closed. The customers are registered
 * already (by the first engine), outside this count. */
static int hot_keys(bench *b, int real, int hot, spine_err *e) {
  PGconn *c = spine_pgconn_open(b->conninfo, e);
  if (!c) return -1;
  int settled_before, settled_after;
  long long before = settled_deadlocks(b, c, &settled_before);
  int rc = engine_open(b, e);
  if (!rc && real) rc = credit_phase(b, "real_intent_steps_per_s", hot_workflows(b), e);
  if (!rc && hot) rc = credit_phase(b, "hot_intent_steps_per_s", 5, e);
  if (b->se.engine) engine_close(b);
  long long after = settled_deadlocks(b, c, &settled_after);
  PQfinish(c);
  if (rc) return rc;
  char params[200];
  snprintf(params, sizeof params,
           "{\"phases\":\"%s%s%s\",\"before\":%lld,\"after\":%lld,\"settled\":%s}",
           real ? "real_intents" : "", real && hot ? "," : "", hot ? "hot_intents" : "", before,
           after, settled_before && settled_after ? "true" : "false");
  if (before < 0 || after < 0)
    return spine_err_set(e, SPINE_EDB, "bench", NULL, "cannot read pg_stat_database.deadlocks");
  emit(b, "deadlocks", (double)(after - before), "1", params);
  return 0;
}

static void cleanup(bench *b) {
  PGconn *c = PQconnectdb(b->conninfo);
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult *r =
        PQexec(c, "DELETE FROM spine.steps WHERE workflow_id IN (SELECT id FROM spine.workflows"
                  " WHERE process LIKE 'bench_%');"
                  "DELETE FROM spine.signals WHERE workflow_id IN (SELECT id FROM spine.workflows"
                  " WHERE process LIKE 'bench_%');"
                  "DELETE FROM spine.bench_effects WHERE workflow_id IN (SELECT id FROM"
                  " spine.workflows WHERE process LIKE 'bench_%');"
                  "DELETE FROM spine.workflows WHERE process LIKE 'bench_%'");
    PQclear(r);
    /* The credits and customers stay (the ledger and the history are append-only); their
     * events are not for anyone: settled, so that no relay delivers them later. */
    char like[64];
    snprintf(like, sizeof like, "%s%%", b->customer_prefix);
    const char *vp[] = {like};
    r = PQexecParams(c, "DELETE FROM spine.outbox_deliveries WHERE customer_id LIKE $1", 1, NULL,
                     vp, NULL, NULL, 0);
    PQclear(r);
  }
  PQfinish(c);
}

/* Is `what` in the comma-separated list `only` (NULL: everything)? */
static int wants(const char *only, const char *what) {
  if (!only) return 1;
  size_t n = strlen(what);
  for (const char *p = only; *p;) {
    size_t len = strcspn(p, ",");
    if (len == n && !strncmp(p, what, n)) return 1;
    p += len;
    if (*p) p++;
  }
  return 0;
}

/* The first name in `only` that is not one of `names`, or NULL. */
static const char *unknown_name(const char *only, char *out, size_t size) {
  for (const char *p = only; p && *p;) {
    size_t len = strcspn(p, ",");
    int found = 0;
    for (int i = 0; names[i] && !found; i++)
      found = strlen(names[i]) == len && !strncmp(p, names[i], len);
    if (!found) {
      snprintf(out, size, "%.*s", (int)len, p);
      return out;
    }
    p += len;
    if (*p) p++;
  }
  return NULL;
}

/* The domain's intents (RegisterCustomer, ApplyManualCredit: the hot-key figures) and the
 * bench's own, BenchRecord (intent_steps_per_s). */
static void catalog(void) {
  spine_catalog_register();
  spine_bench_record_register();
}

int main(int argc, char **argv) {
  static char name[] = "bench"; /* messages say `spine bench`, however it was started */
  argv[0] = name;
  spine_cli__log_level();
  /* the domain's schema, then spine.bench_effects: only a database the bench runs on gets it */
  spine_migrate_add_set(spine_catalog_migrations);
  spine_migrate_add_set(spine_bench_record_migrations);
  spine_intents_set_catalog(catalog);
  spine_cli_args a;
  int rc = spine_cli__parse(argc, argv, spec, usage, 0, 0, &a);
  if (rc) return rc < 0 ? 0 : rc;
  bench b;
  memset(&b, 0, sizeof b);
  b.json = spine_cli__opt(&a, spec, "json") != NULL;
  b.quick = spine_cli__opt(&a, spec, "quick") != NULL;
  const char *only = spine_cli__opt(&a, spec, "only");
  char bad[64];
  if (unknown_name(only, bad, sizeof bad)) {
    fprintf(stderr,
            "spine bench: --only: unknown figure \"%s\" (expected some of steps, intents,"
            " real_intents, hot_intents, latency, memory, recovery)\n",
            bad);
    return SPINE_EXIT_USAGE;
  }
  const char *duration = spine_cli__opt(&a, spec, "duration");
  b.duration_s = b.quick ? 0.5 : 2;
  if (duration) {
    spine_err de;
    int64_t ms;
    if (spine_duration_parse(duration, &ms, &de) || ms < 100 || ms > 3600000) {
      fprintf(stderr, "spine bench: --duration must be a duration from 100ms to 1h (got \"%s\")\n",
              duration);
      return SPINE_EXIT_USAGE;
    }
    b.duration_s = (double)ms / 1000;
  }
  const char *pool = spine_cli__opt(&a, spec, "pool");
  b.pool = 4;
  if (pool) {
    char *end;
    long n = strtol(pool, &end, 10);
    if (end == pool || *end || n < 1 || n > 64) {
      fprintf(stderr, "spine bench: --pool must be a number of connections, 1 to 64 (got \"%s\")\n",
              pool);
      return SPINE_EXIT_USAGE;
    }
    b.pool = (int)n;
  }
  const char *limit = spine_cli__opt(&a, spec, "phase-limit");
  b.limit_s = b.quick ? 60 : 120;
  if (limit) {
    char *end;
    b.limit_s = strtod(limit, &end);
    if (end == limit || *end || !(b.limit_s > 0 && b.limit_s <= 86400)) {
      fprintf(stderr, "spine bench: --phase-limit must be seconds, more than 0 (got \"%s\")\n",
              limit);
      return SPINE_EXIT_USAGE;
    }
  }
  int real = wants(only, "real_intents"), hot = wants(only, "hot_intents");
  spine_err e;
  spine_err_clear(&e);
  if (spine_pgconn_conninfo(b.conninfo, sizeof b.conninfo, &e))
    return spine_cli__fail(b.json, &e, NULL);
  /* libpq takes the last of a keyword given twice, in both forms of conninfo */
  snprintf(b.appname, sizeof b.appname, "spine-bench-%ld", (long)getpid());
  int uri = !strncmp(b.conninfo, "postgresql://", 13) || !strncmp(b.conninfo, "postgres://", 11);
  snprintf(b.engine_conninfo, sizeof b.engine_conninfo, "%s%sapplication_name=%s", b.conninfo,
           !uri                      ? " "
           : strchr(b.conninfo, '?') ? "&"
                                     : "?",
           b.appname);
  snprintf(b.dir, sizeof b.dir, "/tmp/spine-bench-XXXXXX");
  if (!mkdtemp(b.dir)) return 1;
  snprintf(b.customer_prefix, sizeof b.customer_prefix, "bench-%s-", b.dir + strlen(b.dir) - 6);
  const struct {
    const char *name, *src;
  } files[] = {{"bench_steps", steps_src},
               {"bench_intents", intents_src},
               {"bench_wait", wait_src},
               {"bench_credits", credits_src},
               {"bench_customer", customer_src}};
  char path[128];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s.lua", b.dir, files[i].name);
    write_file(path, files[i].src);
  }

  uv_loop_init(&b.loop);
  uv_timer_init(&b.loop, &b.deadline);
  b.deadline.data = &b;
  rc = engine_open(&b, &e);
  if (!rc && wants(only, "steps")) rc = throughput(&b, "bench_steps", "steps_per_s", &e);
  /* the hot-key figures are read against intent_steps_per_s of the same run */
  if (!rc && (wants(only, "intents") || real || hot))
    rc = throughput(&b, "bench_intents", "intent_steps_per_s", &e);
  if (!rc && (real || hot)) rc = register_customers(&b, &e);
  if (!rc && wants(only, "latency")) rc = latency(&b, &e);
  if (!rc && wants(only, "memory")) rc = memory(&b);
  if (b.se.engine) engine_close(&b);
  if (!rc && (real || hot)) rc = hot_keys(&b, real, hot, &e);
  uv_close((uv_handle_t *)&b.deadline, NULL);
  uv_run(&b.loop, UV_RUN_DEFAULT);
  uv_loop_close(&b.loop);
  if (!rc && wants(only, "recovery")) rc = recovery(&b, &e);
  cleanup(&b);
  snprintf(path, sizeof path, "rm -rf %s", b.dir);
  if (system(path)) rc = rc ? rc : 0;
  if (rc) return spine_cli__fail(b.json, &e, NULL);
  return 0;
}
