/* `spine experiments`: per process, experiment and variant, what became of the cases the
 * dispatcher routed: counts by status, median and p95 time to completion, the success rate
 * with its 95 % interval, and whether it differs significantly from the control's; the same
 * for each business outcome the playbooks named (ctx.outcome). */
#include <stdio.h>
#include <string.h>

#include "api_experiments.h"
#include "buf.h"
#include "cli.h"
#include "duration.h"
#include "jsondoc.h"

static const char *const spec[] = {"process=", "since=", "json", NULL};
static const char usage[] =
    "usage: spine experiments [--process P] [--since T] [--json]\n"
    "  For each variant of each experiment: started, completed, failed, compensated, cancelled,\n"
    "  paused, stuck and active cases; median and p95 time to completion; the success rate\n"
    "  (completed out of completed + failed + compensated) with its 95 %% Wilson interval, and\n"
    "  its difference to the control (the manifest's first variant) with a two-proportion\n"
    "  z-test. Then, per outcome its playbook named (ctx.outcome(\"read\")), how many finished\n"
    "  cases named it, their share with its interval, and its difference to the control's.\n"
    "  T is a date, a date-time, or a duration back from now (\"7d\").\n";

/* Under a variant's line, one line an outcome: "outcome read  9 of 10  90.0% [59.6, 98.2]". */
static void print_outcomes(const spine_jsondoc *v, int is_control) {
  const spine_jsondoc *os = spine_jsondoc_get(v, "outcomes");
  for (const spine_jsondoc *o = os ? os->child : NULL; o; o = o->next) {
    char share[64] = "-", cmp[80] = "";
    const spine_jsondoc *ci = spine_jsondoc_get(o, "ci95");
    const spine_jsondoc *vc = spine_jsondoc_get(o, "vs_control");
    if (ci && ci->type == SPINE_JSONDOC_ARRAY && ci->count == 2)
      snprintf(share, sizeof share, "%5.1f%% [%.1f, %.1f]",
               100.0 * spine_jsondoc_num(o, "share", 0), 100 * ci->child->num,
               100 * ci->child->next->num);
    if (vc && vc->type == SPINE_JSONDOC_OBJECT) {
      const spine_jsondoc *sig = spine_jsondoc_get(vc, "significant");
      snprintf(cmp, sizeof cmp, "%+.1f pts, p=%.3f%s", 100 * spine_jsondoc_num(vc, "difference", 0),
               spine_jsondoc_num(vc, "p_value", 0), sig && sig->boolean ? " significant" : "");
    } else if (is_control) {
      snprintf(cmp, sizeof cmp, "control");
    }
    const char *name = spine_jsondoc_str(o, "outcome", NULL);
    printf("    outcome %-20s %7.0f of %-7.0f %-24s %s\n", name ? name : "",
           spine_jsondoc_num(o, "count", 0), spine_jsondoc_num(v, "finished", 0), share, cmp);
  }
}

/* The report as a table, read back from its JSON (api_experiments.c builds both). */
static void print_text(const spine_jsondoc *doc) {
  const spine_jsondoc *groups = spine_jsondoc_get(doc, "experiments");
  int first = 1;
  for (const spine_jsondoc *g = groups ? groups->child : NULL; g; g = g->next, first = 0) {
    const char *exp = spine_jsondoc_str(g, "experiment", NULL),
               *control = spine_jsondoc_str(g, "control", NULL);
    printf("%s%s  experiment %s\n", first ? "" : "\n", spine_jsondoc_str(g, "process", NULL),
           exp ? exp : "(none)");
    printf("  %-16s %7s %7s %6s %6s %6s %6s  %-24s %-18s %s\n", "VARIANT", "STARTED", "DONE",
           "FAILED", "COMP", "PAUSED", "ACTIVE", "SUCCESS [95% CI]", "MEDIAN/P95", "VS CONTROL");
    const spine_jsondoc *vs = spine_jsondoc_get(g, "variants");
    for (const spine_jsondoc *v = vs ? vs->child : NULL; v; v = v->next) {
      char rate[64] = "-", dur[72] = "-", cmp[80] = "";
      const spine_jsondoc *ci = spine_jsondoc_get(v, "ci95");
      const spine_jsondoc *d = spine_jsondoc_get(v, "duration_ms");
      const spine_jsondoc *vc = spine_jsondoc_get(v, "vs_control");
      const char *name = spine_jsondoc_str(v, "variant", NULL);
      if (ci && ci->type == SPINE_JSONDOC_ARRAY && ci->count == 2)
        snprintf(rate, sizeof rate, "%5.1f%% [%.1f, %.1f]",
                 100.0 * spine_jsondoc_num(v, "success_rate", 0), 100 * ci->child->num,
                 100 * ci->child->next->num);
      const spine_jsondoc *median = d ? spine_jsondoc_get(d, "median") : NULL;
      if (median && median->type == SPINE_JSONDOC_NUMBER) {
        char m[32], p[32];
        spine_duration_format(median->num, m);
        spine_duration_format(spine_jsondoc_num(d, "p95", 0), p);
        snprintf(dur, sizeof dur, "%s / %s", m, p);
      }
      if (name && control && !strcmp(name, control))
        snprintf(cmp, sizeof cmp, "control");
      else if (vc && vc->type == SPINE_JSONDOC_OBJECT) {
        const spine_jsondoc *sig = spine_jsondoc_get(vc, "significant");
        snprintf(cmp, sizeof cmp, "%+.1f pts, p=%.3f%s",
                 100 * spine_jsondoc_num(vc, "difference", 0), spine_jsondoc_num(vc, "p_value", 0),
                 sig && sig->boolean ? " significant" : "");
      }
      printf("  %-16s %7.0f %7.0f %6.0f %6.0f %6.0f %6.0f  %-24s %-18s %s\n", name ? name : "",
             spine_jsondoc_num(v, "started", 0), spine_jsondoc_num(v, "completed", 0),
             spine_jsondoc_num(v, "failed", 0), spine_jsondoc_num(v, "compensated", 0),
             spine_jsondoc_num(v, "paused", 0), spine_jsondoc_num(v, "active", 0), rate, dur, cmp);
      print_outcomes(v, name && control && !strcmp(name, control));
    }
  }
  if (first) printf("no routed cases\n");
}

int spine_cli_experiments(int argc, char **argv) {
  spine_cli_cmd cmd;
  char since[32];
  const char *iso;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 0, 0) ||
      spine_cli__since_opt(&cmd, since, &iso) || spine_cli__connect(&cmd))
    return cmd.exit_code;
  spine_buf b = SPINE_BUF_INIT;
  int rc = spine_api_experiments_report(cmd.c, spine_cli__get(&cmd, "process"), iso, "experiments",
                                        &b, &cmd.e);
  PQfinish(cmd.c);
  if (rc) {
    spine_buf_free(&b);
    return spine_cli__fail(cmd.json, &cmd.e, NULL);
  }
  spine_buf_putc(&b, '}');
  if (cmd.json) {
    printf("%s\n", spine_buf_str(&b));
  } else {
    spine_jsondoc *doc = NULL;
    int line;
    if (spine_jsondoc_parse(spine_buf_str(&b), b.len, &doc, &line, &cmd.e) == 0) print_text(doc);
    spine_jsondoc_free(doc);
  }
  spine_buf_free(&b);
  return SPINE_EXIT_OK;
}
