/* Manifests: strict parsing with file, line and field; sticky bucket assignment; the checks of
 * a folder against its playbooks; the statistics of experiment reports. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "jsondoc.h"
#include "manifest.h"
#include "manifest_set.h"
#include "stats.h"
#include "test.h"

static const char good[] =
    "{\n"
    "  \"process\": \"contract_activation\",\n"
    "  \"input\": { \"contract_id\": \"string\", \"start\": \"date?\" },\n"
    "  \"subject\": \"contract_id\",\n"
    "  \"experiment\": { \"id\": \"activation-2026-11\", \"owner\": \"ops-team\",\n"
    "                  \"started\": \"2026-11-01\" },\n"
    "  \"variants\": [\n"
    "    { \"name\": \"control\",  \"playbook\": \"contract_activation\", \"weight\": 90 },\n"
    "    { \"name\": \"fast_lane\", \"playbook\": \"contract_activation_direct\", \"weight\": 10 }\n"
    "  ],\n"
    "  \"overrides\": { \"test-customer-1\": \"fast_lane\" },\n"
    "  \"on_events\": [ \"ContractSigned\" ]\n"
    "}\n";

/* `good` with one substring replaced. */
static char *edit(const char *from, const char *to) {
  const char *at = strstr(good, from);
  ASSERT(at != NULL);
  size_t n = strlen(good) - strlen(from) + strlen(to) + 1;
  char *s = malloc(n);
  snprintf(s, n, "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
  return s;
}

TEST_IMPL(manifest_parse) {
  spine_manifest *m = NULL;
  spine_err e;
  spine_err_clear(&e);
  ASSERT_EQ(spine_manifest_parse("m.json", good, strlen(good), &m, &e), 0);
  ASSERT_STR_EQ(m->process, "contract_activation");
  ASSERT_STR_EQ(m->subject, "contract_id");
  ASSERT_STR_EQ(m->experiment, "activation-2026-11");
  ASSERT_STR_EQ(m->started, "2026-11-01");
  ASSERT_EQ(m->nvariants, 2);
  ASSERT_STR_EQ(m->variants[1].playbook, "contract_activation_direct");
  ASSERT_EQ(m->variants[0].buckets, 9000);
  ASSERT_EQ(m->variants[1].buckets, 1000);
  ASSERT_EQ(m->variants[1].line, 9);
  ASSERT_EQ(m->noverrides, 1);
  ASSERT_STR_EQ(m->overrides[0].variant, "fast_lane");
  ASSERT_EQ(m->nevents, 1);
  ASSERT_STR_EQ(m->on_events[0], "ContractSigned");
  ASSERT_STR_EQ(spine_manifest_input_type(m, "start"), "date?");
  ASSERT_EQ(strlen(m->hash), 64);
  ASSERT(m->outcome == NULL);
  spine_manifest_free(m);
  char *ruled = edit("\"subject\": \"contract_id\",",
                     "\"subject\": \"contract_id\", \"outcome\": \"result.case.end_2\",");
  ASSERT_EQ(spine_manifest_parse("m.json", ruled, strlen(ruled), &m, &e), 0);
  ASSERT_STR_EQ(m->outcome, "result.case.end_2");
  spine_manifest_free(m);
  free(ruled);
  return 0;
}

TEST_IMPL(manifest_errors) {
  static const struct {
    const char *from, *to, *where, *field, *msg;
  } cases[] = {
      {"\"weight\": 10 }", "\"weight\": 9 }", "m.json:7", "variants", "weights sum to 99"},
      {"\"weight\": 10 }", "\"weight\": 0 }", "m.json:9", "variants[1].weight", "above 0"},
      {"\"weight\": 10 }", "\"weight\": \"10\" }", "m.json:9", "variants[1].weight",
       "expected a number"},
      {"\"weight\": 10 }", "\"weight\": 10.001 }", "m.json:9", "variants[1].weight", "0.01"},
      {"\"fast_lane\" }", "\"fast\" }", "m.json:11", "overrides.test-customer-1",
       "unknown variant \"fast\""},
      {"\"subject\": \"contract_id\"", "\"subject\": \"customer\"", "m.json:4", "subject",
       "not a string or integer field of input"},
      {"\"name\": \"fast_lane\"", "\"name\": \"control\"", "m.json:9", "variants[1].name",
       "already named at line 8"},
      {"\"on_events\"", "\"on_event\"", "m.json:12", "on_event", "unknown field"},
      {"\"owner\"", "\"ownr\"", "m.json:5", "experiment.ownr", "unknown field"},
      {"\"2026-11-01\"", "\"November\"", "m.json:6", "experiment.started", "not a date"},
      {"\"date?\"", "\"datetime\"", "m.json:3", "input.start", "bad type"},
      {"\"process\": \"contract_activation\",",
       "\"process\": \"contract_activation\", \"process\": \"x\",", "m.json:2", "process",
       "duplicate key"},
      {"  ],\n", "  ]\n", "m.json:11", "", "malformed JSON: expected ',' or '}'"},
      {"\"ContractSigned\" ]", "\"ContractSigned\", ]", "m.json:12", "",
       "malformed JSON: trailing comma"},
      {"\"playbook\": \"contract_activation\",", "\"params\": 5,", "m.json:8", "variants[0].params",
       "expected an object of parameters"},
      {"\"subject\": \"contract_id\",", "\"subject\": \"contract_id\", \"outcome\": \"outcome\",",
       "m.json:4", "outcome", "expected a path into the result"},
      {"\"subject\": \"contract_id\",", "\"subject\": \"contract_id\", \"outcome\": \"result.\",",
       "m.json:4", "outcome", "got \"result.\""},
      {"\"subject\": \"contract_id\",",
       "\"subject\": \"contract_id\", \"outcome\": \"result.a..b\",", "m.json:4", "outcome",
       "one to four names"},
      {"\"subject\": \"contract_id\",",
       "\"subject\": \"contract_id\", \"outcome\": \"result.a.b.c.d.e\",", "m.json:4", "outcome",
       "one to four names"},
      {"\"subject\": \"contract_id\",", "\"subject\": \"contract_id\", \"outcome\": [1],",
       "m.json:4", "outcome", "got an array"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *text = edit(cases[i].from, cases[i].to);
    spine_manifest *m = NULL;
    spine_err e;
    spine_err_clear(&e);
    int rc = spine_manifest_parse("m.json", text, strlen(text), &m, &e);
    if (rc != SPINE_EINVAL) fprintf(stderr, "case %zu: %s\n", i, cases[i].to);
    ASSERT_EQ(rc, SPINE_EINVAL);
    ASSERT(m == NULL);
    ASSERT_STR_EQ(e.where, cases[i].where);
    ASSERT_STR_EQ(e.field, cases[i].field);
    ASSERT_STR_CONTAINS(e.msg, cases[i].msg);
    free(text);
  }
  return 0;
}

TEST_IMPL(jsondoc_strings) {
  /* Escapes decode to UTF-8, surrogates in pairs; lone surrogates, bad digits and NUL fail. */
  const char *ok = "[\"\\u00e9\\ud83d\\ude00\\/\\b\\u0041\", \"\\\"\\\\\\n\"]";
  spine_jsondoc *doc = NULL;
  int line = 0;
  spine_err e;
  spine_err_clear(&e);
  ASSERT_EQ(spine_jsondoc_parse(ok, strlen(ok), &doc, &line, &e), 0);
  ASSERT_STR_EQ(doc->child->str, "\xc3\xa9\xf0\x9f\x98\x80/\bA");
  ASSERT_STR_EQ(doc->child->next->str, "\"\\\n");
  spine_jsondoc_free(doc);
  static const struct {
    const char *text, *msg;
  } bad[] = {
      {"\"\\ud83d\"", "surrogates in pairs"}, {"\"\\ud83d\\u0041\"", "surrogates in pairs"},
      {"\"\\ude00\"", "surrogates in pairs"}, {"\"\\u00g0\"", "4 hex digits"},
      {"\"\\u00\"", "4 hex digits"},          {"\"\\u0000\"", "NUL character"},
      {"\"\\x\"", "bad escape in string"},    {"\"caf\xe9\"", "not UTF-8"}, /* Latin-1 */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    doc = NULL;
    spine_err_clear(&e);
    ASSERT_EQ(spine_jsondoc_parse(bad[i].text, strlen(bad[i].text), &doc, &line, &e), SPINE_EINVAL);
    ASSERT(doc == NULL);
    ASSERT_STR_CONTAINS(e.msg, bad[i].msg);
  }
  return 0;
}

static spine_manifest *with_weights(const char *a, const char *b) {
  char *t1 = edit("\"weight\": 90", a);
  const char *at = strstr(t1, "\"weight\": 10");
  ASSERT(at != NULL);
  size_t n = strlen(t1) + strlen(b) + 1;
  char *t2 = malloc(n);
  snprintf(t2, n, "%.*s%s%s", (int)(at - t1), t1, b, at + strlen("\"weight\": 10"));
  spine_manifest *m = NULL;
  spine_err e;
  ASSERT_EQ(spine_manifest_parse("m.json", t2, strlen(t2), &m, &e), 0);
  free(t1);
  free(t2);
  return m;
}

TEST_IMPL(dispatch_sticky_weights) {
  /* The hash is a contract: these buckets must never change. */
  ASSERT_EQ(spine_dispatch_bucket("activation-2026-11", "c-1"),
            spine_dispatch_bucket("activation-2026-11", "c-1"));
  int pinned = spine_dispatch_bucket("exp", "subject");
  ASSERT_GE(pinned, 0);
  ASSERT_LT(pinned, 10000);
  ASSERT_NE(spine_dispatch_bucket("exp-a", "subject"), spine_dispatch_bucket("exp-b", "subject"));
  spine_manifest *m90 = with_weights("\"weight\": 90", "\"weight\": 10");
  spine_manifest *m80 = with_weights("\"weight\": 80", "\"weight\": 20");
  int fast90 = 0, fast80 = 0, moved = 0, back = 0;
  for (int i = 0; i < 10000; i++) {
    char subject[32];
    snprintf(subject, sizeof subject, "c-%d", i);
    spine_route a, a2, b;
    spine_dispatch_route(m90, subject, &a);
    spine_dispatch_route(m90, subject, &a2);
    spine_dispatch_route(m80, subject, &b);
    ASSERT(a.variant == a2.variant); /* sticky */
    ASSERT_EQ(a.bucket, b.bucket);
    int f90 = !strcmp(a.variant->name, "fast_lane"), f80 = !strcmp(b.variant->name, "fast_lane");
    fast90 += f90;
    fast80 += f80;
    moved += f90 != f80;
    back += f90 && !f80;
  }
  /* 10,000 fixed subjects: deterministic, so these bounds cannot flake (±1.5 points is about
   * 5 standard deviations of a fair hash at 10 %). */
  ASSERT_GE(fast90, 850);
  ASSERT_LE(fast90, 1150);
  ASSERT_GE(fast80, 1850);
  ASSERT_LE(fast80, 2150);
  ASSERT_EQ(back, 0);
  ASSERT_EQ(moved, fast80 - fast90);
  ASSERT_GE(moved, 850);
  ASSERT_LE(moved, 1150);
  spine_manifest_free(m90);
  spine_manifest_free(m80);
  return 0;
}

TEST_IMPL(dispatch_overrides) {
  spine_manifest *m = NULL;
  spine_err e;
  ASSERT_EQ(spine_manifest_parse("m.json", good, strlen(good), &m, &e), 0);
  spine_route r;
  spine_dispatch_route(m, "test-customer-1", &r);
  ASSERT_STR_EQ(r.variant->name, "fast_lane");
  ASSERT_EQ(r.overridden, 1);
  ASSERT_EQ(r.bucket, spine_dispatch_bucket("activation-2026-11", "test-customer-1"));
  /* A subject routed to control by its bucket stays there without an override. */
  for (int i = 0;; i++) {
    char s[32];
    snprintf(s, sizeof s, "s-%d", i);
    spine_dispatch_route(m, s, &r);
    if (r.bucket < 9000) {
      ASSERT_STR_EQ(r.variant->name, "control");
      ASSERT_EQ(r.overridden, 0);
      break;
    }
  }
  spine_manifest_free(m);
  return 0;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ASSERT(f != NULL);
  fputs(text, f);
  fclose(f);
}

typedef struct seen {
  char all[4096];
  int errors, warnings;
} seen;

static void note(void *data, int warning, const spine_err *e) {
  seen *s = data;
  char msg[600];
  size_t n = strlen(s->all);
  snprintf(s->all + n, sizeof s->all - n, "%s\n", spine_err_format(e, msg, sizeof msg));
  if (warning)
    s->warnings++;
  else
    s->errors++;
}

TEST_IMPL(manifest_set_checks) {
  char dir[] = "/tmp/spine-manifests-XXXXXX";
  ASSERT(mkdtemp(dir) != NULL);
  char path[256];
  /* Valid: playbooks by path, waiter declares no input. */
  snprintf(path, sizeof path, "%s/a.json", dir);
  write_file(path, "{\"process\": \"p\", \"input\": {\"k\": \"string\"}, \"subject\": \"k\",\n"
                   " \"variants\": [{\"name\": \"a\", \"playbook\": \"tests/playbooks/waiter.lua\","
                   " \"weight\": 100}]}\n");
  spine_manifest_set set;
  seen s = {{0}, 0, 0};
  ASSERT_EQ(spine_manifest_set_load(dir, NULL, &set, note, &s), 0);
  ASSERT_EQ(set.n, 1);
  ASSERT(spine_manifest_set_find(&set, "p") != NULL);
  spine_manifest_set_free(&set);
  /* The same process twice, a missing playbook, one that does not compile, an input the
   * playbook requires but the manifest does not give. */
  snprintf(path, sizeof path, "%s/b.json", dir);
  write_file(path, "{\"process\": \"p\", \"input\": {\"k\": \"string\"}, \"subject\": \"k\",\n"
                   " \"variants\": [{\"name\": \"a\", \"playbook\": \"tests/playbooks/waiter.lua\","
                   " \"weight\": 100}]}\n");
  snprintf(path, sizeof path, "%s/c.json", dir);
  write_file(path, "{\"process\": \"q\", \"input\": {\"k\": \"integer\"}, \"subject\": \"k\",\n"
                   " \"variants\": [\n"
                   "  {\"name\": \"a\", \"playbook\": \"no_such_playbook\", \"weight\": 50},\n"
                   "  {\"name\": \"b\", \"playbook\": \"tests/playbooks/bad_syntax.lua\","
                   " \"weight\": 25},\n"
                   "  {\"name\": \"c\", \"playbook\": \"demo_onboarding\", \"weight\": 25}]}\n");
  ASSERT_EQ(spine_manifest_set_load(dir, NULL, &set, note, &s), 4);
  ASSERT_EQ(set.n, 2);
  spine_manifest_set_free(&set);
  char expect[512];
  snprintf(expect, sizeof expect, "%s/b.json:1: process: process \"p\" already has a manifest",
           dir);
  ASSERT_STR_CONTAINS(s.all, expect);
  snprintf(expect, sizeof expect, "%s/c.json:3: variants[0].playbook: no playbook", dir);
  ASSERT_STR_CONTAINS(s.all, expect);
  snprintf(expect, sizeof expect,
           "%s/c.json:4: variants[1].playbook: playbook tests/playbooks/bad_syntax.lua does not "
           "compile",
           dir);
  ASSERT_STR_CONTAINS(s.all, expect);
  snprintf(expect, sizeof expect,
           "%s/c.json:5: variants[2].playbook: playbook demo_onboarding requires input customer",
           dir);
  ASSERT_STR_CONTAINS(s.all, expect);
  for (const char *f = "abc"; *f; f++) {
    snprintf(path, sizeof path, "%s/%c.json", dir, *f);
    unlink(path);
  }
  rmdir(dir);
  return 0;
}

TEST_IMPL(stats_intervals) {
  double lo, hi;
  /* Wilson 95 % for 8 of 10: centre (0.8 + z²/20) / (1 + z²/10). */
  spine_stats_wilson(8, 10, &lo, &hi);
  ASSERT(fabs(lo - 0.4901625) < 1e-6);
  ASSERT(fabs(hi - 0.9433178) < 1e-6);
  spine_stats_wilson(0, 10, &lo, &hi);
  ASSERT(lo == 0 && hi > 0.27 && hi < 0.28);
  spine_stats_wilson(0, 0, &lo, &hi);
  ASSERT(lo == 0 && hi == 0);
  spine_stats_diff d;
  spine_stats_compare(500, 1000, 560, 1000, &d);
  ASSERT(fabs(d.difference - 0.06) < 1e-12);
  ASSERT(fabs(d.z - 2.688125) < 1e-5);
  ASSERT(d.significant);
  spine_stats_compare(50, 100, 52, 100, &d);
  ASSERT(!d.significant);
  ASSERT(d.p_value > 0.7);
  spine_stats_compare(10, 10, 10, 10, &d);
  ASSERT(d.z == 0 && d.p_value == 1 && !d.significant);
  return 0;
}
