/* `spine serve`'s outbox relay (outbox.h): its settings from the environment, and the case
 * starts of manifests' on_events, which run in the relay's worker thread on a blocking
 * connection of their own (intake.c's code, as `spine start` uses). The idempotency key
 * "outbox:<event id>:<process>" makes a start happen once however often the event comes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake.h"
#include "log.h"
#include "outbox.h"
#include "pgconn.h"
#include "server_internal.h"

/* Only the relay's worker thread uses it, one start at a time. */
typedef struct starter {
  char conninfo[1024];
  PGconn *c;
} starter;

static starter S;

static int64_t env_ms(const char *name, int64_t dflt) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  char *end;
  long long n = strtoll(v, &end, 10);
  return *end || n <= 0 ? dflt : (int64_t)n;
}

static PGconn *connection(starter *s, spine_err *e) {
  if (s->c && PQstatus(s->c) == CONNECTION_OK) return s->c;
  if (s->c) PQfinish(s->c);
  return s->c = spine_pgconn_open(s->conninfo, e);
}

/* spine_outbox_start_fn: every process whose manifest in force lists the type. */
static int start_cases(void *data, int64_t event_id, const char *event_type, const char *input_json,
                       const char *trace_id, spine_err *e) {
  starter *s = data;
  PGconn *c = connection(s, e);
  if (!c) return SPINE_EDB;
  const char *p[1] = {event_type};
  PGresult *r = spine_pgconn_query(c,
                                   "SELECT process FROM spine.manifests"
                                   " WHERE on_events ? $1 ORDER BY process",
                                   1, p, e);
  if (!r) return SPINE_EDB;
  int rc = 0;
  for (int i = 0; i < PQntuples(r) && !rc; i++) {
    const char *process = PQgetvalue(r, i, 0);
    char key[200], id[40], ev[24];
    snprintf(key, sizeof key, "outbox:%" PRId64 ":%s", event_id, process);
    snprintf(ev, sizeof ev, "%" PRId64, event_id);
    spine_intake_case req = {process, input_json, NULL, key, trace_id, NULL};
    const char *code;
    rc = spine_intake_start_case(c, &req, id, &code, e);
    if (rc) {
      char msg[sizeof e->msg];
      snprintf(msg, sizeof msg, "%s", e->msg);
      spine_err_set(e, rc, e->where, e->field, "on_events of %s: %s", process, msg);
    } else {
      spine_log_info("outbox", "case started by an event", "process", process, "workflow", id,
                     "event", ev, "type", event_type, NULL);
    }
  }
  PQclear(r);
  return rc;
}

int spine_server__outbox_start(uv_loop_t *loop, spine_engine *eng, const char *conninfo,
                               spine_outbox **out, spine_err *e) {
  memset(&S, 0, sizeof S);
  snprintf(S.conninfo, sizeof S.conninfo, "%s", conninfo);
  spine_outbox_opts o = {0};
  o.backoff_ms = env_ms("SPINE_OUTBOX_BACKOFF_MS", 1000);
  o.backoff_max_ms = env_ms("SPINE_OUTBOX_BACKOFF_MAX_MS", 3600 * 1000);
  o.timeout_ms = env_ms("SPINE_OUTBOX_TIMEOUT_MS", 10000);
  int64_t in_flight = env_ms("SPINE_OUTBOX_MAX_IN_FLIGHT", 32);
  o.max_in_flight = (int)(in_flight > 1024 ? 1024 : in_flight);
  o.start = start_cases;
  o.start_data = &S;
  o.allow_http = getenv(SPINE_OUTBOX_ALLOW_HTTP);
  return spine_outbox_new(loop, eng, &o, out, e);
}

void spine_server__outbox_free(spine_outbox *relay) {
  spine_outbox_free(relay);
  if (S.c) PQfinish(S.c);
  S.c = NULL;
}
