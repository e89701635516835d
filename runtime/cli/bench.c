/* `spine bench`: the figures of shared/bench/README.md ("Metrics"), measured on this machine's
 * database (embedded or $SPINE_DATABASE_URL), printed as the JSON lines of bench/run-peers with
 * "system":"spine". It reports figures; it never fails on timing. */
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cli.h"
#include "scheduler.h"
#include "sha256.h"

static const char *const spec[] = {"quick", "json", "only=", NULL};
static const char usage[] =
    "usage: spine bench [--quick] [--json] [--only steps,intents,latency,memory,recovery]\n"
    "  Measures durable steps/s, intent steps/s, 10-step latency, start latency, memory per\n"
    "  waiting workflow and recovery after kill -9, as shared/bench/README.md defines them.\n";

static const char steps_src[] = "return { name = 'bench_steps', run = function(ctx, input)\n"
                                "  for i = 1, 10 do ctx.step('s', function() return i end) end\n"
                                "  return true\nend }\n";
static const char intents_src[] = "return { name = 'bench_intents', run = function(ctx, input)\n"
                                  "  for i = 1, 10 do ctx.intent('BenchRecord', { n = i }) end\n"
                                  "  return true\nend }\n";
static const char wait_src[] = "return { name = 'bench_wait', run = function(ctx, input)\n"
                               "  ctx.step('s', function() return 1 end)\n"
                               "  return ctx.wait('message', { timeout = '24h' })\nend }\n";

typedef struct bench {
  uv_loop_t loop;
  spine_engine *eng;
  char dir[64];
  char conninfo[1024];
  int json;
  int quick;
  int ended, begun;
  /* per-workflow start times for latency: only one in flight then */
  double started_at, begun_at, ended_at;
} bench;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_end(void *data, const spine_wf *wf, const char *r, const char *e) {
  (void)wf, (void)r, (void)e;
  bench *b = data;
  b->ended++;
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
    if (spine_engine_start(b->eng, playbook, NULL, id, e)) return -1;
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

static int throughput(bench *b, const char *name, const char *metric, spine_err *e) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s.lua", b->dir, name);
  int batch = b->quick ? 200 : 500, reps = b->quick ? 1 : 3;
  if (run_batch(b, path, 100, e)) return -1; /* warm-up */
  double t0 = now_s();
  char elapsed[128] = "";
  for (int r = 0; r < reps; r++) {
    double s = now_s();
    if (run_batch(b, path, batch, e)) return -1;
    snprintf(elapsed + strlen(elapsed), sizeof elapsed - strlen(elapsed), "%s%.3f", r ? "," : "",
             now_s() - s);
  }
  double total = now_s() - t0;
  double steps = 10.0 * batch * reps / total;
  char params[300];
  snprintf(params, sizeof params,
           "{\"workflows\":%d,\"in_flight\":%d,\"steps_per_workflow\":10,\"reps\":%d,"
           "\"elapsed_s\":[%s],\"pool\":4}",
           batch, batch, reps, elapsed);
  emit(b, metric, steps, "1/s", params);
  if (!strcmp(metric, "steps_per_s")) emit(b, "workflows_per_s", steps / 10, "1/s", params);
  return 0;
}

static int latency(bench *b, spine_err *e) {
  char path[128];
  snprintf(path, sizeof path, "%s/bench_steps.lua", b->dir);
  int n = b->quick ? 50 : 200;
  double *lat = calloc((size_t)n, sizeof *lat), *start = calloc((size_t)n, sizeof *start);
  if (!lat || !start) abort();
  for (int i = -10; i < n; i++) {
    char id[80];
    int target = b->ended + 1;
    b->started_at = now_s();
    if (spine_engine_start(b->eng, path, NULL, id, e)) return -1;
    while (b->ended < target)
      uv_run(&b->loop, UV_RUN_ONCE);
    if (i < 0) continue;
    lat[i] = (b->ended_at - b->started_at) * 1000;
    start[i] = (b->begun_at - b->started_at) * 1000;
  }
  char params[128];
  snprintf(params, sizeof params, "{\"workflows\":%d,\"steps_per_workflow\":10}", n);
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
  lua_gc(spine_engine_lua(b->eng), LUA_GCCOLLECT, 0);
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
    spine_engine_start(b->eng, path, NULL, id, &e);
  /* parked = its wait is recorded: no workflow has an operation in flight any more */
  while (b->begun < target || !spine_store_idle(spine_engine_store(b->eng)))
    uv_run(&b->loop, UV_RUN_ONCE);
}

static int memory(bench *b) {
  char path[128];
  snprintf(path, sizeof path, "%s/bench_wait.lua", b->dir);
  int n = b->quick ? 1000 : 5000;
  lua_State *L = spine_engine_lua(b->eng);
  park(b, path, 50);
  long before = min_rss(b);
  long lua_before = (long)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + lua_gc(L, LUA_GCCOUNTB, 0);
  park(b, path, n);
  long after = min_rss(b);
  long lua_after = (long)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + lua_gc(L, LUA_GCCOUNTB, 0);
  char params[200];
  snprintf(params, sizeof params,
           "{\"parked\":%d,\"rss_before\":%ld,\"rss_after\":%ld,\"lua_bytes_per_workflow\":%ld}", n,
           before, after, (lua_after - lua_before) / n);
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
  char exe[1024];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len < 0) return spine_err_set(e, SPINE_EIO, NULL, NULL, "cannot find own executable");
  exe[len] = '\0';
  PGconn *c = PQconnectdb(b->conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    PQfinish(c);
    return spine_err_set(e, SPINE_EDB, NULL, NULL, "cannot connect");
  }
  char path[128], sql[1024], hash[65];
  snprintf(path, sizeof path, "%s/bench_steps.lua", b->dir);
  /* n started cases of bench_steps, as `spine start` leaves them, for the server to claim */
  spine_sha256_hex(steps_src, strlen(steps_src), hash);
  const char *vp[] = {hash, path, steps_src};
  PGresult *r = PQexecParams(c,
                             "INSERT INTO spine.playbook_versions (hash, name, path, source)"
                             " VALUES ($1, 'bench_steps', $2, $3) ON CONFLICT (hash) DO NOTHING",
                             3, NULL, vp, NULL, NULL, 0);
  PQclear(r);
  snprintf(sql, sizeof sql,
           "INSERT INTO spine.workflows (id, process, playbook, version, status, input, trace_id,"
           " wake_at) SELECT 'bench-rec-' || g, 'bench_steps', 'bench_steps', '%s', 'pending',"
           " '{}', md5(g::text), now() FROM generate_series(1, %d) g",
           hash, n);
  r = PQexec(c, sql);
  int inserted = PQresultStatus(r) == PGRES_COMMAND_OK;
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
  }
  PQfinish(c);
}

static int wants(const char *only, const char *what) {
  return !only || strstr(only, what) != NULL;
}

int spine_cli_bench(int argc, char **argv) {
  spine_cli_args a;
  int rc = spine_cli__parse(argc, argv, spec, usage, 0, 0, &a);
  if (rc) return rc < 0 ? 0 : rc;
  bench b;
  memset(&b, 0, sizeof b);
  b.json = spine_cli__opt(&a, spec, "json") != NULL;
  b.quick = spine_cli__opt(&a, spec, "quick") != NULL;
  const char *only = spine_cli__opt(&a, spec, "only");
  spine_err e;
  spine_err_clear(&e);
  if (spine_cli__conninfo(b.conninfo, sizeof b.conninfo, &e))
    return spine_cli__fail(b.json, &e, NULL);
  snprintf(b.dir, sizeof b.dir, "/tmp/spine-bench-XXXXXX");
  if (!mkdtemp(b.dir)) return 1;
  char path[128];
  snprintf(path, sizeof path, "%s/bench_steps.lua", b.dir);
  write_file(path, steps_src);
  snprintf(path, sizeof path, "%s/bench_intents.lua", b.dir);
  write_file(path, intents_src);
  snprintf(path, sizeof path, "%s/bench_wait.lua", b.dir);
  write_file(path, wait_src);

  uv_loop_init(&b.loop);
  spine_engine_opts o = {0};
  o.conninfo = b.conninfo;
  o.pool = 4;
  o.quiet = 1;
  if (spine_engine_new(&b.loop, &o, &b.eng, &e) || spine_engine_serve(b.eng, &e)) {
    uv_loop_close(&b.loop);
    return spine_cli__fail(b.json, &e, NULL);
  }
  spine_engine_on_end(b.eng, on_end, &b);
  spine_engine_on_begin(b.eng, on_begin, &b);
  rc = 0;
  if (wants(only, "steps")) rc = throughput(&b, "bench_steps", "steps_per_s", &e);
  if (!rc && wants(only, "intents")) rc = throughput(&b, "bench_intents", "intent_steps_per_s", &e);
  if (!rc && wants(only, "latency")) rc = latency(&b, &e);
  if (!rc && wants(only, "memory")) rc = memory(&b);
  spine_engine_stop(b.eng);
  uv_run(&b.loop, UV_RUN_DEFAULT);
  spine_engine_free(b.eng);
  uv_loop_close(&b.loop);
  if (!rc && wants(only, "recovery")) rc = recovery(&b, &e);
  cleanup(&b);
  snprintf(path, sizeof path, "rm -rf %s", b.dir);
  if (system(path)) rc = rc ? rc : 0;
  if (rc) return spine_cli__fail(b.json, &e, NULL);
  return 0;
}
