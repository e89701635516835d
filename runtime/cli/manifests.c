/* `spine manifests check | reload | show`: validates the manifests folder and the playbooks it
 * names, makes it the set in force, or shows the set in force. Every problem names file, line
 * and field; a refused reload leaves the set in force as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_ops.h"
#include "buf.h"
#include "cli.h"
#include "duration.h"
#include "intake.h"
#include "jsondoc.h"
#include "log.h"
#include "pgconn.h"

static const char *const spec[] = {"idle-days=", "subjects-file=", "json", NULL};
static const char usage[] =
    "usage: spine manifests check|reload|show [--idle-days N] [--json]\n"
    "       spine manifests route PROCESS [SUBJECT...] [--subjects-file F] [--json]\n"
    "  check   validates every manifest ($SPINE_MANIFESTS, else ./manifests) and the playbooks\n"
    "          it names; warns about variants without a case in --idle-days (default 7) and\n"
    "          experiments past their end. Exits 1 on errors.\n"
    "  reload  checks, then makes the folder the set in force for new cases, all or nothing\n"
    "          (a running `spine serve` does the same on SIGHUP).\n"
    "  show    the manifests in force, when and by whom they were loaded (--json: as\n"
    "          GET /v1/manifests has them).\n"
    "  route   the variant and bucket each subject gets under the manifest in force (one\n"
    "          subject a line in F), without starting anything.\n";

typedef struct problems {
  spine_err *items;
  int *warning;
  int n, cap, errors;
} problems;

static void collect(void *data, int warning, const spine_err *e) {
  problems *p = data;
  if (p->n == p->cap) {
    int cap = p->cap ? p->cap * 2 : 16;
    spine_err *items = realloc(p->items, (size_t)cap * sizeof *items);
    int *w = items ? realloc(p->warning, (size_t)cap * sizeof *w) : NULL;
    if (items) p->items = items;
    if (!w) return;
    p->warning = w;
    p->cap = cap;
  }
  p->items[p->n] = *e;
  p->warning[p->n++] = warning;
  if (!warning) p->errors++;
}

static void warn(problems *p, const char *where, const char *field, const char *msg) {
  spine_err e;
  spine_err_set(&e, SPINE_EINVAL, where, field, "%s", msg);
  collect(p, 1, &e);
}

static void json_err(spine_buf *b, const spine_err *e) {
  const char *kind = spine_err_kind(e->code);
  spine_buf_puts(b, "{\"kind\":");
  spine_log_json_string(b, kind, strlen(kind));
  spine_buf_puts(b, ",\"code\":");
  spine_log_json_string(b, kind, strlen(kind));
  spine_buf_puts(b, ",\"message\":");
  spine_log_json_string(b, e->msg, strlen(e->msg));
  spine_buf_puts(b, ",\"where\":");
  spine_log_json_string(b, e->where, strlen(e->where));
  spine_buf_puts(b, ",\"field\":");
  spine_log_json_string(b, e->field, strlen(e->field));
  spine_buf_putc(b, '}');
}

/* Prints the problems: JSON arrays "errors" and "warnings" into b, or lines on stdout. */
static void print_problems(const problems *p, int json, spine_buf *b) {
  for (int pass = 0; pass < 2; pass++) {
    if (json) spine_buf_puts(b, pass ? ",\"warnings\":[" : ",\"errors\":[");
    int first = 1;
    for (int i = 0; i < p->n; i++) {
      if (p->warning[i] != pass) continue;
      if (json) {
        if (!first) spine_buf_putc(b, ',');
        json_err(b, &p->items[i]);
      } else {
        char msg[600];
        printf("%s: %s\n", pass ? "warning" : "error",
               spine_err_format(&p->items[i], msg, sizeof msg));
      }
      first = 0;
    }
    if (json) spine_buf_putc(b, ']');
  }
}

/* One row when variant $2 of process $1 is idle: in force for $3 days at least (in the
 * manifest in force, unchanged through every load since: a load keeps only the hashes, so a
 * changed manifest starts its variants' time anew) and without a case in those days. A variant
 * created seconds ago has received no case in 7 days, and says nothing by it. */
/* clang-format off */
static const char idle_sql[] =
    "WITH cur AS (SELECT hash, body::jsonb AS body FROM spine.manifests WHERE process = $1),"
    " loads AS (SELECT l.id, l.loaded_at, (SELECT x ->> 'hash' FROM"
    "   jsonb_array_elements(l.manifests) x WHERE x ->> 'process' = $1 LIMIT 1) AS hash"
    "   FROM spine.manifest_loads l),"
    " since AS (SELECT min(loaded_at) AS at FROM loads WHERE id > coalesce((SELECT max(id)"
    "   FROM loads WHERE hash IS DISTINCT FROM (SELECT hash FROM cur)), 0))"
    " SELECT 1 FROM cur, since"
    " WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(cur.body -> 'variants') v"
    "   WHERE v ->> 'name' = $2)"
    " AND since.at <= now() - $3::int * interval '1 day'"
    " AND NOT EXISTS (SELECT 1 FROM spine.workflows WHERE process = $1 AND variant = $2"
    "   AND created_at > spine.now() - $3::int * interval '1 day')";
/* clang-format on */

/* Warnings that need the clock and the database: ended experiments, idle variants. */
static void check_usage(const spine_manifest_set *set, int idle_days, problems *p) {
  int64_t now = (int64_t)time(NULL) * 1000, ends;
  for (int i = 0; i < set->n; i++) {
    const spine_manifest *m = set->items[i];
    char where[128];
    snprintf(where, sizeof where, "%s:%d", m->path, m->ends_line);
    if (m->ends && !spine_duration_parse_time(m->ends, &ends, NULL) && ends + 86400000 <= now) {
      char msg[160];
      snprintf(msg, sizeof msg, "the experiment ended on %s: conclude it or extend it", m->ends);
      warn(p, where, "experiment.ends", msg);
    }
  }
  spine_err e;
  spine_err_clear(&e);
  PGconn *c = spine_pgconn_connect(&e);
  if (!c) {
    char msg[300];
    snprintf(msg, sizeof msg, "traffic not checked: %s", e.msg);
    warn(p, "database", NULL, msg);
    return;
  }
  char days[16];
  snprintf(days, sizeof days, "%d", idle_days);
  for (int i = 0; i < set->n; i++) {
    const spine_manifest *m = set->items[i];
    for (int v = 0; v < m->nvariants; v++) {
      const char *params[3] = {m->process, m->variants[v].name, days};
      PGresult *r = spine_pgconn_query(c, idle_sql, 3, params, &e);
      if (r && PQntuples(r) == 1) {
        char where[128], field[64];
        snprintf(where, sizeof where, "%s:%d", m->path, m->variants[v].line);
        snprintf(field, sizeof field, "variants[%d]", v);
        char msg[200];
        snprintf(msg, sizeof msg,
                 "variant \"%s\" received no case in %d days, in force all that time",
                 m->variants[v].name, idle_days);
        warn(p, where, field, msg);
      }
      if (r) PQclear(r);
    }
  }
  PQfinish(c);
}

static int check(int json, int idle_days) {
  problems p = {0};
  spine_manifest_set set;
  const char *dir = spine_intake_manifests_dir();
  spine_manifest_set_load(dir, spine_intake_playbooks_dir(), &set, collect, &p);
  check_usage(&set, idle_days, &p);
  spine_buf b = SPINE_BUF_INIT;
  if (json) {
    spine_buf_printf(&b, "{\"ok\":%s,\"manifests\":[", p.errors ? "false" : "true");
    for (int i = 0; i < set.n; i++) {
      if (i) spine_buf_putc(&b, ',');
      spine_buf_puts(&b, "{\"process\":");
      spine_log_json_string(&b, set.items[i]->process, strlen(set.items[i]->process));
      spine_buf_puts(&b, ",\"path\":");
      spine_log_json_string(&b, set.items[i]->path, strlen(set.items[i]->path));
      spine_buf_puts(&b, "}");
    }
    spine_buf_putc(&b, ']');
  }
  print_problems(&p, json, &b);
  for (int i = 0; json && i < p.n; i++)
    if (!p.warning[i]) {
      spine_buf_puts(&b, ",\"error\":");
      json_err(&b, &p.items[i]);
      break;
    }
  if (json)
    printf("%s}\n", spine_buf_str(&b));
  else
    printf("%d manifest%s checked in %s: %d error%s\n", set.n, set.n == 1 ? "" : "s", dir, p.errors,
           p.errors == 1 ? "" : "s");
  spine_buf_free(&b);
  int status = p.errors ? SPINE_EXIT_REJECTED : SPINE_EXIT_OK;
  spine_manifest_set_free(&set);
  free(p.items);
  free(p.warning);
  return status;
}

static int reload(spine_cli_cmd *cmd) {
  if (spine_cli__connect(cmd)) return cmd->exit_code;
  PGconn *c = cmd->c;
  int json = cmd->json;
  spine_err *e = &cmd->e;
  problems p = {0};
  int loaded = -1;
  int rc = spine_intake_manifests_reload(c, "spine manifests reload", 0, collect, &p, &loaded, e);
  PQfinish(c);
  spine_buf b = SPINE_BUF_INIT;
  int status = SPINE_EXIT_OK;
  if (rc) {
    /* The first error is the answer; all of them follow. */
    if (rc == SPINE_EINVAL && p.errors) {
      for (int i = 0; i < p.n; i++)
        if (!p.warning[i]) {
          char msg[256];
          snprintf(msg, sizeof msg, "%s", p.items[i].msg);
          spine_err_set(&p.items[i], p.items[i].code, p.items[i].where, p.items[i].field,
                        "%s (reload refused: the manifests in force are unchanged)", msg);
          *e = p.items[i];
          break;
        }
    }
    if (json) {
      spine_buf_puts(&b, "{\"loaded\":false,\"error\":");
      json_err(&b, e);
      print_problems(&p, 1, &b);
      printf("%s}\n", spine_buf_str(&b));
    } else {
      print_problems(&p, 0, &b);
      char msg[600];
      fprintf(stderr, "spine: %s\n", spine_err_format(e, msg, sizeof msg));
    }
    status = SPINE_EXIT_REJECTED;
  } else if (json) {
    printf("{\"loaded\":true,\"manifests\":%d}\n", loaded);
  } else {
    printf("%d manifest%s in force\n", loaded, loaded == 1 ? "" : "s");
  }
  spine_buf_free(&b);
  free(p.items);
  free(p.warning);
  return status;
}

static const char *text_of(const spine_jsondoc *o, const char *key) {
  const spine_jsondoc *v = o ? spine_jsondoc_get(o, key) : NULL;
  return v && v->type == SPINE_JSONDOC_STRING ? v->str : NULL;
}

/* The set in force (spine_api_manifests_sql's JSON) for people: a block a process, its
 * variants with weight and playbook, its experiment; when and by whom it was loaded. */
static void print_set(const char *json) {
  spine_jsondoc *doc = NULL;
  int line;
  if (spine_jsondoc_parse(json, strlen(json), &doc, &line, NULL)) {
    printf("%s\n", json);
    return;
  }
  const char *at = text_of(doc, "loaded_at"), *by = text_of(doc, "loaded_by");
  if (at)
    printf("loaded %s by %s\n", at, by ? by : "?");
  else
    printf("no manifests in force (spine manifests reload loads the folder)\n");
  const spine_jsondoc *items = spine_jsondoc_get(doc, "manifests");
  for (const spine_jsondoc *it = items ? items->child : NULL; it; it = it->next) {
    const spine_jsondoc *m = spine_jsondoc_get(it, "manifest");
    const char *hash = text_of(it, "hash");
    printf("\n%s  (%s, %.12s)\n", text_of(it, "process") ? text_of(it, "process") : "?",
           text_of(it, "path") ? text_of(it, "path") : "?", hash ? hash : "");
    const char *subject = text_of(m, "subject");
    if (subject) printf("  subject     %s\n", subject);
    const spine_jsondoc *x = m ? spine_jsondoc_get(m, "experiment") : NULL;
    if (x && x->type == SPINE_JSONDOC_OBJECT) {
      printf("  experiment  %s", text_of(x, "id") ? text_of(x, "id") : "?");
      if (text_of(x, "started")) printf(", started %s", text_of(x, "started"));
      if (text_of(x, "ends")) printf(", ends %s", text_of(x, "ends"));
      printf("\n");
    }
    const spine_jsondoc *vs = m ? spine_jsondoc_get(m, "variants") : NULL;
    for (const spine_jsondoc *v = vs ? vs->child : NULL; v; v = v->next) {
      const spine_jsondoc *w = spine_jsondoc_get(v, "weight");
      const spine_jsondoc *params = spine_jsondoc_get(v, "params");
      spine_buf pb = SPINE_BUF_INIT; /* "activation=polling days=3": key=value, text raw */
      for (const spine_jsondoc *kv = params ? params->child : NULL; kv; kv = kv->next) {
        spine_buf_printf(&pb, "%s%s=", pb.len ? " " : "", kv->key);
        if (kv->type == SPINE_JSONDOC_STRING)
          spine_buf_puts(&pb, kv->str);
        else
          spine_jsondoc_write(kv, &pb);
      }
      printf("  variant     %-24s %3.0f %%  playbook %s%s%s\n",
             text_of(v, "name") ? text_of(v, "name") : "?",
             w && w->type == SPINE_JSONDOC_NUMBER ? w->num : 0,
             text_of(v, "playbook") ? text_of(v, "playbook") : text_of(it, "process"),
             params ? ", params " : "", spine_buf_str(&pb));
      spine_buf_free(&pb);
    }
    const spine_jsondoc *ov = m ? spine_jsondoc_get(m, "overrides") : NULL;
    for (const spine_jsondoc *o = ov && ov->type == SPINE_JSONDOC_OBJECT ? ov->child : NULL; o;
         o = o->next)
      if (o->type == SPINE_JSONDOC_STRING) printf("  override    %s -> %s\n", o->key, o->str);
  }
  spine_jsondoc_free(doc);
}

static int show(spine_cli_cmd *cmd) {
  if (spine_cli__connect(cmd)) return cmd->exit_code;
  const char *key[1] = {"manifests"};
  PGresult *r = spine_pgconn_query(cmd->c, spine_api_manifests_sql, 1, key, &cmd->e);
  PQfinish(cmd->c);
  if (!r) return spine_cli__fail(cmd->json, &cmd->e, NULL);
  if (cmd->json)
    printf("%s\n", PQgetvalue(r, 0, 0));
  else
    print_set(PQgetvalue(r, 0, 0));
  PQclear(r);
  return SPINE_EXIT_OK;
}

static void route_one(const spine_manifest *m, const char *subject, int json, int first,
                      spine_buf *b) {
  spine_route r;
  spine_dispatch_route(m, subject, &r);
  if (!json) {
    printf("%s\t%s\t%d%s\n", subject, r.variant->name, r.bucket, r.overridden ? "\toverride" : "");
    return;
  }
  spine_buf_puts(b, first ? "{\"subject\":" : ",{\"subject\":");
  spine_log_json_string(b, subject, strlen(subject));
  spine_buf_puts(b, ",\"variant\":");
  spine_log_json_string(b, r.variant->name, strlen(r.variant->name));
  spine_buf_printf(b, ",\"bucket\":%d,\"overridden\":%s}", r.bucket,
                   r.overridden ? "true" : "false");
}

static int route(const spine_cli_args *a, int json) {
  spine_err e;
  spine_err_clear(&e);
  const char *file = spine_cli__opt(a, spec, "subjects-file");
  FILE *f = NULL;
  if (file && !(f = fopen(file, "r"))) {
    spine_err_set(&e, SPINE_EIO, file, NULL, "cannot read the file");
    return spine_cli__fail(json, &e, NULL);
  }
  PGconn *c = spine_pgconn_connect(&e);
  spine_manifest *m = NULL;
  if (c && !spine_intake_manifest_in_force(c, a->pos[1], &m, &e) && !m)
    spine_err_set(&e, SPINE_ENOTFOUND, NULL, "process", "no manifest in force for %s", a->pos[1]);
  if (c) PQfinish(c);
  if (!m) {
    if (f) fclose(f);
    return spine_cli__fail(json, &e, e.code == SPINE_ENOTFOUND ? "not_found" : NULL);
  }
  spine_buf b = SPINE_BUF_INIT;
  spine_buf_puts(&b, "{\"process\":");
  spine_log_json_string(&b, m->process, strlen(m->process));
  spine_buf_puts(&b, ",\"routes\":[");
  int n = 0;
  for (int i = 2; i < a->npos; i++)
    route_one(m, a->pos[i], json, n++ == 0, &b);
  char line[1024];
  while (f && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0]) route_one(m, line, json, n++ == 0, &b);
  }
  if (f) fclose(f);
  if (json) printf("%s]}\n", spine_buf_str(&b));
  spine_buf_free(&b);
  spine_manifest_free(m);
  return SPINE_EXIT_OK;
}

int spine_cli_manifests(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 1, 8)) return cmd.exit_code;
  const spine_cli_args *a = &cmd.a;
  int json = cmd.json;
  const char *idle = spine_cli__get(&cmd, "idle-days");
  int idle_days = idle ? atoi(idle) : 7;
  if (idle_days <= 0) {
    fprintf(stderr, "spine manifests: --idle-days must be a positive number\n");
    return SPINE_EXIT_USAGE;
  }
  if (strcmp(a->pos[0], "route") && a->npos > 1) {
    fprintf(stderr, "spine manifests: unexpected argument \"%s\"\n\n%s", a->pos[1], usage);
    return SPINE_EXIT_USAGE;
  }
  if (!strcmp(a->pos[0], "check")) return check(json, idle_days);
  if (!strcmp(a->pos[0], "reload")) return reload(&cmd);
  if (!strcmp(a->pos[0], "show")) return show(&cmd);
  if (!strcmp(a->pos[0], "route") && a->npos >= 2) return route(a, json);
  fprintf(stderr, "spine manifests: unknown action \"%s\"\n\n%s", a->pos[0], usage);
  return SPINE_EXIT_USAGE;
}
