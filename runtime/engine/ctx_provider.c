/* ctx.provider (SPEC §3 "At-least-once provider calls", §6): a durable step around a call of a
 * provider adapter's operation. Each attempt is recorded `running` before it is made, then its
 * outcome; the idempotency key, "<workflow id>:<seq>", is the same for every attempt and after
 * a crash, so a provider that honours it sees one effect. Transient failures are retried by
 * the policy, waiting on durable timers (the workflow row waits meanwhile, and may leave
 * memory); when the attempts run out the step and the workflow are paused and an incident is
 * opened for an operator (`spine retry`, `spine skip`, `spine cancel`). Rejections and adapter
 * faults are answers: recorded and raised at the call site. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "ctx.h"
#include "ctx_internal.h"
#include "duration.h"
#include "lerror.h"
#include "log.h"
#include "provider_port.h"
#include "steplog.h"
#include "workflow_internal.h"

#define MAX_NAME 200

/* Unless the playbook says otherwise: five attempts, 1 s doubling to at most 5 min apart. */
static const spine_ctx__policy provider_policy = {5, 1000, 5 * 60 * 1000, 2.0};

/* A provider step in progress: what each attempt needs, kept off the Lua stack so that C
 * callbacks never read the coroutine's frame. */
struct spine_ctx_provider {
  spine_provider_call *call; /* the attempt in flight, or NULL */
  spine_wf *wf;
  spine_strand *strand; /* the branch whose step it is (NULL: the main body) */
  int pending_kind;     /* an outcome that came while another strand was loaded ... */
  char *pending_json;   /* ... queued for its own (on_outcome) */
  size_t pending_len;
  spine_ctx__policy policy;
  int64_t timeout_ms; /* per attempt, 0 = the provider's */
  int seq, attempt;
  int failed;     /* the outcome being recorded is an error */
  char *outcome;  /* its JSON, until the playbook is resumed with it */
  char *args;     /* the operation's arguments, JSON */
  char *no_retry; /* "\ncode\ncode\n": transient codes not to retry, or NULL */
  char name[];    /* "provider.operation"; provider and operation follow its NUL */
};

static const char *operation_of(const spine_ctx_provider *st) {
  return st->name + strlen(st->name) + 1;
}

static const char *provider_of(const spine_ctx_provider *st) {
  return operation_of(st) + strlen(operation_of(st)) + 1;
}

static void cancel_call(spine_wf *wf, spine_ctx_provider *st) {
  const spine_provider_port *port = spine_wf_providers(wf);
  if (st && st->call && port) port->cancel(port->impl, st->call);
  if (st) st->call = NULL;
}

void spine_ctx_provider_cancel(spine_wf *wf) {
  cancel_call(wf, wf->call.provider);
  for (int i = 0; i < wf->nstrands; i++) /* its branches' calls too */
    if (wf->strands[i] != wf->cur) cancel_call(wf, wf->strands[i]->call.provider);
}

void spine_ctx_provider_drop(spine_wf *wf, spine_ctx_provider *st) {
  if (!st) return;
  cancel_call(wf, st);
  free(st->outcome);
  free(st->args);
  free(st->no_retry);
  free(st->pending_json);
  free(st);
}

void spine_ctx_provider_free(spine_wf *wf) {
  spine_ctx_provider_drop(wf, wf->call.provider);
  wf->call.provider = NULL;
}

/* ---- the outcome: recorded, then the playbook resumes with it ---- */

static void finished(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  spine_ctx_provider *st = wf->call.provider;
  int failed = st->failed;
  spine_wf_count_step(wf);
  spine_ctx__push_json(wf->co, st->outcome, strlen(st->outcome));
  spine_ctx_provider_free(wf);
  spine_wf_resume(wf, failed);
}

static void finish(spine_wf *wf, int failed, const char *json, size_t len) {
  spine_ctx_provider *st = wf->call.provider;
  st->failed = failed;
  free(st->outcome);
  st->outcome = strndup(json, len);
  if (!st->outcome) abort();
  spine_op *op = spine_wf_op_begin(wf);
  spine_steplog_add_finish(op, wf, st->seq, failed ? "failed" : "completed",
                           failed ? NULL : st->outcome, failed ? st->outcome : NULL, st->attempt);
  spine_wf_submit(wf, finished);
}

/* ---- retries exhausted: pause, open an incident ---- */

static void paused(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  PGresult *r = spine_op_result(op, op->nstmts - 1);
  if (!r || PQntuples(r) != 1) {
    spine_wf_give_up(wf, "the paused step is not running in the database");
    return;
  }
  spine_ctx_provider *st = wf->call.provider;
  char attempts[16];
  snprintf(attempts, sizeof attempts, "%d", st->attempt);
  spine_log_warn("workflow", "workflow paused: the provider call's retries ran out", "workflow",
                 wf->id, "trace_id", wf->trace_id, "step", st->name, "attempts", attempts,
                 "incident", PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0), NULL);
  spine_wf_parked(wf, SPINE_WF_PAUSED);
}

static void pause(spine_wf *wf, const char *error_json) {
  spine_ctx_provider *st = wf->call.provider;
  spine_op *op = spine_wf_op_begin(wf);
  spine_op_stmt(op, SPINE_SQL_PROVIDER_PAUSE, 1);
  spine_op_param(op, wf->id);
  spine_op_param_int(op, st->seq);
  spine_op_param(op, error_json);
  spine_op_param_int(op, st->attempt);
  spine_op_param(op, st->name);
  spine_op_param_int(op, spine_wf_worker(wf));
  spine_wf_submit(wf, paused);
}

/* ---- attempts ---- */

static void attempt(spine_wf *wf, int n);

static void backoff_over(spine_wf *wf) {
  attempt(wf, wf->call.provider->attempt + 1);
}

static void retry_recorded(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  spine_wf_sleep(wf, wf->call.wake_ms, backoff_over);
}

static void retry_later(spine_wf *wf, const char *error_json) {
  spine_ctx_provider *st = wf->call.provider;
  wf->call.wake_ms = spine_wf_now(wf) + spine_ctx__backoff_ms(wf, &st->policy, st->attempt);
  char until[32];
  spine_duration_format_time(wf->call.wake_ms, until);
  spine_buf waiting_for = SPINE_BUF_INIT;
  spine_buf_puts(&waiting_for, "{\"kind\":\"retry\",\"name\":");
  spine_log_json_string(&waiting_for, st->name, strlen(st->name));
  spine_buf_printf(&waiting_for, ",\"attempt\":%d,\"until\":\"%s\"}", st->attempt, until);
  spine_op *op = spine_wf_op_begin(wf);
  spine_steplog_add_retry(op, wf, st->seq, "provider", st->name, error_json, st->attempt,
                          wf->call.wake_ms);
  spine_wf_add_wait(op, wf, spine_buf_str(&waiting_for), wf->call.wake_ms);
  spine_buf_free(&waiting_for);
  spine_wf_submit(wf, retry_recorded);
}

/* Whether the transient error `json` has a code the playbook said not to retry. */
static int not_retried(spine_wf *wf, const char *json, size_t len) {
  spine_ctx_provider *st = wf->call.provider;
  if (!st->no_retry) return 0;
  lua_State *co = wf->co;
  int top = lua_gettop(co);
  spine_ctx__push_json(co, json, len);
  int hit = 0;
  if (lua_istable(co, -1) && lua_getfield(co, -1, "code") == LUA_TSTRING) {
    char key[MAX_NAME + 3];
    snprintf(key, sizeof key, "\n%s\n", lua_tostring(co, -1));
    hit = strstr(st->no_retry, key) != NULL;
  }
  lua_settop(co, top);
  return hit;
}

static void handle_outcome(spine_wf *wf, const spine_provider_outcome *o);

/* A branch's outcome, run with the branch loaded. */
static void outcome_event(spine_wf *wf) {
  spine_ctx_provider *st = wf->call.provider;
  if (!st || !st->pending_json) return;
  spine_provider_outcome o = {0};
  char *json = st->pending_json;
  st->pending_json = NULL;
  o.kind = st->pending_kind;
  o.json = json;
  o.json_len = st->pending_len;
  handle_outcome(wf, &o);
  free(json);
}

static void on_outcome(void *data, const spine_provider_outcome *o) {
  spine_ctx_provider *st = data;
  spine_wf *wf = st->wf;
  st->call = NULL;
  if (spine_wf_stopped(wf)) return;
  if (st->strand && wf->cur != st->strand) { /* a branch's: queued behind what runs */
    st->pending_kind = o->kind;
    st->pending_json = strndup(o->json, o->json_len);
    if (!st->pending_json) abort();
    st->pending_len = o->json_len;
    spine_wf_hold(wf);
    spine_wf_strand_post(wf, st->strand, outcome_event);
    spine_wf_unhold(wf);
    return;
  }
  handle_outcome(wf, o);
}

static void handle_outcome(spine_wf *wf, const spine_provider_outcome *o) {
  spine_ctx_provider *st = wf->call.provider;
  switch (o->kind) {
    case SPINE_PROVIDER_OK:
      finish(wf, 0, o->json, o->json_len);
      return;
    case SPINE_PROVIDER_REJECTED:
    case SPINE_PROVIDER_INVALID:
      finish(wf, 1, o->json, o->json_len);
      return;
    case SPINE_PROVIDER_TRANSIENT:
      break;
  }
  char *err = strndup(o->json, o->json_len);
  if (!err) abort();
  if (not_retried(wf, o->json, o->json_len))
    finish(wf, 1, err, strlen(err));
  else if (st->attempt < st->policy.attempts)
    retry_later(wf, err);
  else
    pause(wf, err);
  free(err);
}

/* The attempt could not start (no such operation, arguments refused): an answer, recorded. */
static void refused(spine_wf *wf, const spine_err *e) {
  spine_ctx_provider *st = wf->call.provider;
  spine_buf err = SPINE_BUF_INIT;
  spine_buf_printf(&err, "{\"kind\":\"invalid_argument\",\"code\":\"%s\",\"message\":",
                   e->code == SPINE_ENOTFOUND ? "unknown_operation" : "bad_arguments");
  spine_log_json_string(&err, e->msg, strlen(e->msg));
  spine_buf_puts(&err, ",\"provider\":");
  spine_log_json_string(&err, provider_of(st), strlen(provider_of(st)));
  spine_buf_puts(&err, ",\"operation\":");
  spine_log_json_string(&err, operation_of(st), strlen(operation_of(st)));
  spine_buf_putc(&err, '}');
  finish(wf, 1, spine_buf_str(&err), err.len);
  spine_buf_free(&err);
}

static void begun(spine_op *op) {
  spine_wf *wf = spine_wf_committed(op);
  if (!wf) return;
  PGresult *r = spine_op_result(op, op->nstmts - 1);
  if (!r || PQntuples(r) != 1) {
    spine_wf_give_up(wf, "the provider step has ended in the database already");
    return;
  }
  spine_op_release(op);
  spine_ctx_provider *st = wf->call.provider;
  char key[sizeof wf->id + 16], traceparent[64];
  snprintf(key, sizeof key, "%s:%d", wf->id, st->seq);
  snprintf(traceparent, sizeof traceparent, "00-%s-%08x%08x-01", wf->trace_id, (unsigned)st->seq,
           (unsigned)st->attempt);
  spine_provider_request req = {
      .provider = provider_of(st),
      .operation = operation_of(st),
      .args_json = st->args,
      .idempotency_key = key,
      .traceparent = strlen(wf->trace_id) == 32 ? traceparent : NULL,
      .workflow_id = wf->id,
      .timeout_ms = st->timeout_ms,
  };
  spine_err e;
  spine_err_clear(&e);
  spine_wf_move(wf, SPINE_WF_PHASE_PROVIDER);
  const spine_provider_port *port = spine_wf_providers(wf);
  if (port->call(port->impl, &req, on_outcome, st, &st->call, &e)) refused(wf, &e);
}

/* Records attempt `n` as running, then makes it. */
static void attempt(spine_wf *wf, int n) {
  spine_ctx_provider *st = wf->call.provider;
  st->attempt = n;
  spine_op *op = spine_wf_op_begin(wf);
  spine_op_stmt(op, SPINE_SQL_PROVIDER_BEGIN, 1);
  spine_op_param(op, wf->id);
  spine_op_param_int(op, st->seq);
  spine_op_param(op, st->name);
  spine_op_param_int(op, n);
  spine_steplog_add_where(op, wf);
  spine_wf_submit(wf, begun);
}

/* ---- the call ---- */

/* Reads opts.retry.non_retryable (a list of error codes) into "\ncode\n..." or NULL. */
static char *check_no_retry(lua_State *L, int opts) {
  if (lua_isnil(L, opts) || lua_getfield(L, opts, "retry") != LUA_TTABLE) {
    if (!lua_isnil(L, opts)) lua_pop(L, 1);
    return NULL;
  }
  int t = lua_getfield(L, -1, "non_retryable");
  if (t == LUA_TNIL) {
    lua_pop(L, 2);
    return NULL;
  }
  luaL_argcheck(L, t == LUA_TTABLE, 4, "retry.non_retryable must be a list of error codes");
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_putc(&b, '\n');
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, -1, i);
    size_t len;
    const char *code = lua_tolstring(L, -1, &len);
    if (!code || len == 0 || len > MAX_NAME || memchr(code, '\n', len)) {
      spine_buf_free(&b);
      luaL_argerror(L, 4, "retry.non_retryable must be a list of error codes");
    }
    spine_buf_puts(&b, code);
    spine_buf_putc(&b, '\n');
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  char *s = strdup(spine_buf_str(&b));
  spine_buf_free(&b);
  if (!s) abort();
  return s;
}

static spine_ctx_provider *state_new(spine_wf *wf, const char *provider, const char *operation,
                                     int seq) {
  size_t lp = strlen(provider), lo = strlen(operation);
  spine_ctx_provider *st = calloc(1, sizeof *st + 2 * (lp + lo) + 4);
  if (!st) abort();
  snprintf(st->name, lp + lo + 2, "%s.%s", provider, operation);
  memcpy(st->name + lp + lo + 2, operation, lo + 1);
  memcpy(st->name + lp + lo + 2 + lo + 1, provider, lp + 1);
  st->seq = seq;
  st->wf = wf;
  st->strand = spine_wf_in_branch(wf) ? wf->cur : NULL;
  spine_ctx_provider_free(wf); /* one left by a cancellation during a backoff */
  wf->call.provider = st;
  return st;
}

/* Stack: 1 provider, 2 operation, 3 args, 4 opts (nil or table). */
int spine_ctx__provider(lua_State *L) {
  spine_wf *wf = spine_ctx__check_step(L);
  const char *provider = luaL_checkstring(L, 1);
  const char *operation = luaL_checkstring(L, 2);
  luaL_argcheck(L, strlen(provider) + strlen(operation) < MAX_NAME, 2, "name too long");
  luaL_argcheck(L, *provider && !strchr(provider, '.'), 1, "not a provider name");
  luaL_argcheck(L, *operation, 2, "empty operation name");
  if (lua_isnoneornil(L, 3)) {
    lua_settop(L, 2);
    lua_newtable(L);
  }
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 4);
  if (!lua_isnil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  spine_ctx__policy policy = spine_ctx__check_policy(L, 4, provider_policy);
  int64_t timeout = lua_isnil(L, 4) ? 0 : spine_ctx__field_duration(L, 4, "timeout", 0);
  char name[MAX_NAME + 2];
  snprintf(name, sizeof name, "%s.%s", provider, operation);

  int seq;
  int m = spine_wf_next_step(wf, L, "provider", name, &seq);
  if (m < 0) return lua_error(L);
  const char *status = "";
  if (m > 0) {
    lua_getfield(L, -1, "status");
    status = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (!strcmp(status, "completed") || !strcmp(status, "failed"))
      return spine_ctx__replay_outcome(L);
  }
  if (spine_ctx__cancelled(wf)) return spine_ctx__raise_cancel(L);
  const spine_provider_port *port = spine_wf_providers(wf);
  if (port && !port->has(port->impl, provider))
    return spine_lerror_raise(L, "invalid_argument", "unknown_provider",
                              "no provider adapter named \"%s\" (providers/%s.lua)", provider,
                              provider);
  spine_buf args = SPINE_BUF_INIT;
  spine_err e;
  spine_err_clear(&e);
  if (spine_codec_encode(L, 3, "args", &args, &e)) {
    spine_buf_free(&args);
    return spine_lerror_raise(L, "invalid_argument", "bad_args", "%s: %s", e.field, e.msg);
  }
  char *no_retry = check_no_retry(L, 4);
  spine_ctx_provider *st = state_new(wf, provider, operation, seq);
  st->policy = policy;
  st->timeout_ms = timeout;
  st->no_retry = no_retry;
  st->args = strdup(spine_buf_str(&args));
  spine_buf_free(&args);
  if (!st->args) abort();

  if (m == 0) {
    attempt(wf, 1);
    return lua_yieldk(L, 0, 0, spine_ctx__value_k);
  }
  /* Recorded and unfinished (entry on top): the last process stopped within this step. */
  lua_getfield(L, -1, "attempt");
  st->attempt = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (!strcmp(status, "retrying")) {
    lua_getfield(L, -1, "wake_at");
    int64_t wake = (int64_t)lua_tointeger(L, -1);
    lua_pop(L, 2);
    spine_wf_move(wf, SPINE_WF_PHASE_TIMER);
    spine_wf_timer(wf, wake, backoff_over);
  } else if (!strcmp(status, "paused")) {
    /* Still waiting for an operator (the row was woken for something else): park again. */
    lua_getfield(L, -1, "error");
    spine_buf err = SPINE_BUF_INIT;
    spine_lerror_encode(L, -1, &err);
    lua_pop(L, 2);
    pause(wf, spine_buf_str(&err));
    spine_buf_free(&err);
  } else { /* running: the call may or may not have reached the provider; same key again */
    lua_pop(L, 1);
    attempt(wf, st->attempt > 0 ? st->attempt : 1);
  }
  return lua_yieldk(L, 0, 0, spine_ctx__value_k);
}
