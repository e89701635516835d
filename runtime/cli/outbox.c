/* `spine outbox`: the outbox relay for operators — deliveries per subscriber, dead letters and
 * their re-queueing, webhook subscriptions (runtime/sql/0004_outbox_relay.sql). Writes only
 * subscriber rows and dead deliveries; a running `spine serve` does the delivering. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_outbox.h"
#include "buf.h"
#include "cli.h"
#include "jsondoc.h"
#include "log.h"
#include "outbox.h"
#include "pgconn.h"

static const char *const spec[] = {"dead",        "all-dead",      "subscriber=", "url=", "events=",
                                   "secret-env=", "max-attempts=", "limit=",      "json", NULL};
static const char usage[] =
    "usage: spine outbox [--dead [--subscriber NAME] [--limit N]] [--json]\n"
    "       spine outbox retry EVENT_ID [--subscriber NAME] | --all-dead [--subscriber NAME]\n"
    "       spine outbox subscribe NAME --url URL [--events A,B] [--secret-env VAR]\n"
    "                                   [--max-attempts N]\n"
    "       spine outbox unsubscribe NAME | pause NAME | resume NAME\n"
    "  Without a subcommand: each subscriber's pending, delivered and dead deliveries; with\n"
    "  --dead, the dead letters (deliveries whose attempts ran out) with their last error.\n"
    "  retry        puts an event's dead deliveries (or every dead one) back in line.\n"
    "  subscribe    a webhook: each event (of the types in --events, default all) committed\n"
    "               from now on is POSTed to URL as JSON, at least once, in order per\n"
    "               ordering key, signed with the HMAC key in `spine serve`'s variable VAR\n"
    "               (X-Spine-Timestamp: <unix seconds>, X-Spine-Signature: sha256= the HMAC\n"
    "               of \"<timestamp>.<body>\"); after N failed attempts (default 8) the\n"
    "               delivery is dead. URL must be https://, or http:// to a host\n"
    "               SPINE_OUTBOX_ALLOW_HTTP lists (host or host:port, comma-separated).\n"
    "               Subscribing an existing NAME changes it.\n"
    "  unsubscribe  removes a webhook and its deliveries; pause and resume hold and release a\n"
    "               subscriber's deliveries (they keep accumulating meanwhile).\n"
    "  The built-in subscribers: signals (every event, as signal \"event.<type>\" to the running\n"
    "  workflows of its contract) and starts (manifests' on_events).\n";

/* The queries read as SQL. */
/* clang-format off */
static const char subscribe_sql[] =
    "INSERT INTO spine.outbox_subscribers (name, kind, url, events, secret_env, max_attempts)"
    " VALUES ($1, 'http', $2, $3::text[], $4, coalesce($5::int, 8))"
    " ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, events = EXCLUDED.events,"
    " secret_env = EXCLUDED.secret_env, max_attempts = EXCLUDED.max_attempts"
    " WHERE spine.outbox_subscribers.kind = 'http'"
    " RETURNING jsonb_build_object('name', name, 'kind', kind, 'url', url, 'events',"
    " to_jsonb(events), 'secret_env', secret_env, 'max_attempts', max_attempts,"
    " 'enabled', enabled)::text";
/* clang-format on */

static int usage_error(const char *fmt, const char *arg) {
  fputs("spine outbox: ", stderr);
  fprintf(stderr, "%s%s\n\n%s", fmt, arg ? arg : "", usage);
  return SPINE_EXIT_USAGE;
}

/* The subscribers' summary of spine_api_outbox_subscribers (`list`: its "subscribers"), for
 * people: the same rows as --json and GET /v1/outbox/subscribers. */
static void print_summary(const spine_jsondoc *list) {
  printf("%-16s %-7s %8s %10s %6s  %s\n", "subscriber", "kind", "pending", "delivered", "dead",
         "delivers to");
  for (const spine_jsondoc *s = list ? list->child : NULL; s; s = s->next) {
    const char *kind = spine_jsondoc_str(s, "kind", ""),
               *secret = spine_jsondoc_str(s, "secret_env", "");
    spine_buf events = SPINE_BUF_INIT;
    const spine_jsondoc *ev = spine_jsondoc_get(s, "events");
    for (const spine_jsondoc *x = ev ? ev->child : NULL; x; x = x->next)
      if (x->type == SPINE_JSONDOC_STRING)
        spine_buf_printf(&events, "%s%s", events.len ? "," : "", x->str);
    char to[512];
    if (!strcmp(kind, "signal"))
      snprintf(to, sizeof to, "running workflows of the event's contract (\"event.<type>\")");
    else if (!strcmp(kind, "start"))
      snprintf(to, sizeof to, "processes whose manifests list the type in on_events");
    else
      snprintf(to, sizeof to, "%s%s%s%s%s%s", spine_jsondoc_str(s, "url", ""),
               events.len ? " (events " : "", spine_buf_str(&events), events.len ? ")" : "",
               *secret ? " signed with $" : "", secret);
    const spine_jsondoc *on = spine_jsondoc_get(s, "enabled");
    printf("%-16s %-7s %8.0f %10.0f %6.0f  %s%s\n", spine_jsondoc_str(s, "name", ""), kind,
           spine_jsondoc_num(s, "pending", 0), spine_jsondoc_num(s, "delivered", 0),
           spine_jsondoc_num(s, "dead", 0), to,
           on && on->type == SPINE_JSONDOC_BOOL && !on->boolean ? "  [paused]" : "");
    spine_buf_free(&events);
  }
}

/* The dead letters of spine_api_outbox_dead (`list`: its "dead"), for people. */
static void print_dead(const spine_jsondoc *list) {
  for (const spine_jsondoc *d = list ? list->child : NULL; d; d = d->next)
    printf("event %.0f (%s, key %s, of %s) to %s: dead after %.0f attempts\n  last error: %s\n",
           spine_jsondoc_num(d, "event_id", 0), spine_jsondoc_str(d, "type", ""),
           spine_jsondoc_str(d, "ordering_key", ""), spine_jsondoc_str(d, "created_at", ""),
           spine_jsondoc_str(d, "subscriber", ""), spine_jsondoc_num(d, "attempts", 0),
           spine_jsondoc_str(d, "last_error", ""));
  if (!list || !list->count) printf("no dead letters\n");
}

/* Prints the answer `b` of the API function: as it is with --json, else `text(doc[key])`. */
static int print_answer(const spine_buf *b, int json, const char *key,
                        void (*text)(const spine_jsondoc *), spine_err *e) {
  if (json) {
    printf("%s\n", spine_buf_str(b));
    return SPINE_EXIT_OK;
  }
  spine_jsondoc *doc = NULL;
  int line;
  if (spine_jsondoc_parse(spine_buf_str(b), b->len, &doc, &line, e))
    return spine_cli__fail(0, e, NULL);
  text(spine_jsondoc_get(doc, key));
  spine_jsondoc_free(doc);
  return SPINE_EXIT_OK;
}

static int show(PGconn *c, const spine_cli_args *a, int json, spine_err *e) {
  const char *limit = spine_cli__opt(a, spec, "limit");
  if (limit && atoi(limit) <= 0) return usage_error("--limit: not a positive number: ", limit);
  if (!limit) limit = "100";
  const char *subscriber = spine_cli__opt(a, spec, "subscriber");
  spine_buf b = SPINE_BUF_INIT;
  int dead = spine_cli__opt(a, spec, "dead") != NULL;
  int rc = dead ? spine_api_outbox_dead(c, subscriber, atoi(limit), "dead", &b, e)
                : spine_api_outbox_subscribers(c, "subscribers", &b, e);
  int status = rc ? spine_cli__fail(json, e, NULL)
                  : print_answer(&b, json, dead ? "dead" : "subscribers",
                                 dead ? print_dead : print_summary, e);
  spine_buf_free(&b);
  return status;
}

static int retry(PGconn *c, const spine_cli_args *a, int json, spine_err *e) {
  int all = spine_cli__opt(a, spec, "all-dead") != NULL;
  const char *event = a->npos > 1 ? a->pos[1] : NULL;
  if (all == (event != NULL)) return usage_error("retry takes EVENT_ID or --all-dead", NULL);
  if (event && strspn(event, "0123456789") != strlen(event))
    return usage_error("retry: not an event id: ", event);
  const char *subscriber = spine_cli__opt(a, spec, "subscriber");
  long n;
  int rc = spine_api_outbox_redeliver(c, event, subscriber, &n, e);
  if (rc) return spine_cli__fail(json, e, rc == SPINE_ENOTFOUND ? "not_found" : NULL);
  if (json)
    printf("{\"requeued\":%ld}\n", n);
  else
    printf("%ld dead deliver%s back in line\n", n, n == 1 ? "y" : "ies");
  return SPINE_EXIT_OK;
}

/* "A,B" as a PostgreSQL text array literal {"A","B"}; NULL for NULL. */
static int events_array(const char *list, spine_buf *out) {
  spine_buf_putc(out, '{');
  const char *p = list;
  int n = 0;
  while (*p) {
    size_t len = strcspn(p, ",");
    const char *s = p;
    while (len && *s == ' ')
      s++, len--;
    while (len && s[len - 1] == ' ')
      len--;
    if (!len) return -1;
    for (size_t i = 0; i < len; i++)
      if (!(s[i] == '_' || s[i] == '.' || s[i] == '-' || (s[i] >= 'a' && s[i] <= 'z') ||
            (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
        return -1;
    spine_buf_puts(out, n++ ? ",\"" : "\"");
    spine_buf_append(out, s, len);
    spine_buf_putc(out, '"');
    p += strcspn(p, ",");
    if (*p == ',') p++;
  }
  spine_buf_putc(out, '}');
  return n ? 0 : -1;
}

static int subscribe(PGconn *c, const spine_cli_args *a, int json, spine_err *e) {
  if (a->npos != 2) return usage_error("subscribe takes NAME", NULL);
  const char *name = a->pos[1];
  const char *url = spine_cli__opt(a, spec, "url");
  const char *events = spine_cli__opt(a, spec, "events");
  const char *secret_env = spine_cli__opt(a, spec, "secret-env");
  const char *max = spine_cli__opt(a, spec, "max-attempts");
  if (!url) return usage_error("subscribe needs --url URL", NULL);
  /* As the relay will check it: refused here already, rather than dead at its first event. */
  if (spine_outbox_check_url(url, getenv(SPINE_OUTBOX_ALLOW_HTTP), e)) {
    if (strstr(e->msg, "plaintext"))
      snprintf(e->msg + strlen(e->msg), sizeof e->msg - strlen(e->msg),
               " (in this command's environment and spine serve's)");
    return spine_cli__fail(json, e, NULL);
  }
  if (max && (atoi(max) < 1 || atoi(max) > 1000 || strspn(max, "0123456789") != strlen(max))) {
    spine_err_set(e, SPINE_EINVAL, NULL, "max_attempts", "\"%.32s\" is not from 1 to 1000", max);
    return spine_cli__fail(json, e, NULL);
  }
  if (secret_env && (!*secret_env || strspn(secret_env, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                        "abcdefghijklmnopqrstuvwxyz0123456789_") !=
                                         strlen(secret_env))) {
    spine_err_set(e, SPINE_EINVAL, NULL, "secret_env",
                  "\"%.64s\" is not an environment variable's name", secret_env);
    return spine_cli__fail(json, e, NULL);
  }
  if (secret_env &&
      (strncmp(secret_env, SPINE_OUTBOX_SECRET_PREFIX, strlen(SPINE_OUTBOX_SECRET_PREFIX)) ||
       !secret_env[strlen(SPINE_OUTBOX_SECRET_PREFIX)])) {
    spine_err_set(
        e, SPINE_EINVAL, NULL, "secret_env",
        "\"%.64s\" is not an outbox secret: its name must start with " SPINE_OUTBOX_SECRET_PREFIX
        " (other variables hold other secrets)",
        secret_env);
    return spine_cli__fail(json, e, NULL);
  }
  spine_buf arr = SPINE_BUF_INIT;
  if (events && events_array(events, &arr)) {
    spine_buf_free(&arr);
    spine_err_set(e, SPINE_EINVAL, NULL, "events",
                  "\"%.128s\" is not a comma-separated list of event types", events);
    return spine_cli__fail(json, e, NULL);
  }
  const char *p[5] = {name, url, events ? spine_buf_str(&arr) : NULL, secret_env, max};
  PGresult *r = spine_pgconn_query(c, subscribe_sql, 5, p, e);
  spine_buf_free(&arr);
  if (!r) {
    if (strstr(e->msg, "outbox_subscribers_name_check")) {
      spine_err_set(e, SPINE_EINVAL, NULL, "name",
                    "\"%.64s\" is not a subscriber name (lower-case letters, digits, _ . -)", name);
    }
    return spine_cli__fail(json, e, NULL);
  }
  if (PQntuples(r) == 0) {
    PQclear(r);
    spine_err_set(e, SPINE_ECONFLICT, NULL, "name", "%s is a built-in subscriber, not a webhook",
                  name);
    return spine_cli__fail(json, e, NULL);
  }
  if (json)
    printf("%s\n", PQgetvalue(r, 0, 0));
  else
    printf("%s: events are POSTed to %s\n", name, url);
  PQclear(r);
  return SPINE_EXIT_OK;
}

/* unsubscribe (webhooks only), pause, resume. */
static int change(PGconn *c, const spine_cli_args *a, const char *what, int json, spine_err *e) {
  if (a->npos != 2) return usage_error(what, " takes NAME");
  const char *p[1] = {a->pos[1]};
  const char *sql =
      !strcmp(what, "unsubscribe")
          ? "DELETE FROM spine.outbox_subscribers WHERE name = $1 AND kind = 'http'"
            " RETURNING name"
      : !strcmp(what, "pause")
          ? "UPDATE spine.outbox_subscribers SET enabled = false WHERE name = $1"
            " RETURNING name"
          : "WITH u AS (UPDATE spine.outbox_subscribers SET enabled = true WHERE name = $1"
            " RETURNING name) SELECT name, pg_notify('spine_outbox', '') FROM u";
  PGresult *r = spine_pgconn_query(c, sql, 1, p, e);
  if (!r) return spine_cli__fail(json, e, NULL);
  int n = PQntuples(r);
  PQclear(r);
  if (n == 0) {
    r = spine_pgconn_query(c, "SELECT kind FROM spine.outbox_subscribers WHERE name = $1", 1, p, e);
    int exists = r && PQntuples(r) == 1;
    if (r) PQclear(r);
    if (exists)
      spine_err_set(e, SPINE_ECONFLICT, NULL, "name",
                    "%s is a built-in subscriber: pause it instead", a->pos[1]);
    else
      spine_err_set(e, SPINE_ENOTFOUND, NULL, "name", "no subscriber %s", a->pos[1]);
    return spine_cli__fail(json, e, exists ? NULL : "not_found");
  }
  const char *done = !strcmp(what, "unsubscribe") ? "unsubscribed"
                     : !strcmp(what, "pause")     ? "paused"
                                                  : "resumed";
  if (json) {
    spine_buf b = SPINE_BUF_INIT;
    spine_buf_puts(&b, "{\"name\":");
    spine_log_json_string(&b, a->pos[1], strlen(a->pos[1]));
    spine_buf_printf(&b, ",\"status\":\"%s\"}\n", done);
    fputs(spine_buf_str(&b), stdout);
    spine_buf_free(&b);
  } else {
    printf("%s: %s\n", a->pos[1], done);
  }
  return SPINE_EXIT_OK;
}

int spine_cli_outbox(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 0, 2)) return cmd.exit_code;
  const spine_cli_args *a = &cmd.a;
  const char *sub = a->npos ? a->pos[0] : NULL;
  static const char *const subs[] = {"retry", "subscribe", "unsubscribe", "pause", "resume", NULL};
  int known = !sub;
  for (int i = 0; sub && subs[i]; i++)
    known |= !strcmp(sub, subs[i]);
  if (!known) return usage_error("unknown subcommand: ", sub);
  if (!sub && a->npos > 0) return usage_error("unexpected argument", NULL);
  if (spine_cli__connect(&cmd)) return cmd.exit_code;
  int rc;
  if (!sub)
    rc = show(cmd.c, a, cmd.json, &cmd.e);
  else if (!strcmp(sub, "retry"))
    rc = retry(cmd.c, a, cmd.json, &cmd.e);
  else if (!strcmp(sub, "subscribe"))
    rc = subscribe(cmd.c, a, cmd.json, &cmd.e);
  else
    rc = change(cmd.c, a, sub, cmd.json, &cmd.e);
  PQfinish(cmd.c);
  return rc;
}
