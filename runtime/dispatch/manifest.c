/* Routing manifests: strict validation of one manifest's JSON into a spine_manifest. Every
 * error names the file, the line and the field, and says what is expected; unknown fields are
 * refused so a misspelt key never passes silently. */
#include "manifest.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "duration.h"
#include "jsondoc.h"
#include "sha256.h"

static int bad(spine_err *e, const char *path, int line, const char *field, const char *fmt, ...)
    SPINE_PRINTF(5, 6);

static int bad(spine_err *e, const char *path, int line, const char *field, const char *fmt, ...) {
  char where[128], msg[256];
  snprintf(where, sizeof where, "%s:%d", path, line);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return spine_err_set(e, SPINE_EINVAL, where, field, "%s", msg);
}

/* Names of processes, variants and events: letters, digits, '_', '-', '.'; 1-100 chars. */
static int good_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 100) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || *s == '-' || *s == '.'))
      return 0;
  return 1;
}

int spine_manifest_known_type(const char *type) {
  static const char *const types[] = {"string", "number", "integer", "boolean",
                                      "table",  "date",   NULL};
  size_t n = strlen(type);
  if (n && type[n - 1] == '?') n--;
  for (int i = 0; types[i]; i++)
    if (strlen(types[i]) == n && !strncmp(types[i], type, n)) return 1;
  return 0;
}

/* Refuses members of `obj` not in `allowed` (NULL-terminated). */
static int only(const spine_jsondoc *obj, const char *const *allowed, const char *prefix,
                const char *path, const char *expected, spine_err *e) {
  for (const spine_jsondoc *c = obj->child; c; c = c->next) {
    int ok = 0;
    for (int i = 0; allowed[i] && !ok; i++)
      ok = !strcmp(allowed[i], c->key);
    if (!ok) {
      char field[64];
      snprintf(field, sizeof field, "%s%s", prefix, c->key);
      return bad(e, path, c->line, field, "unknown field (expected %s)", expected);
    }
  }
  return 0;
}

/* A string member: required or not; *out is a copy (NULL when absent and optional). */
static int get_string(const spine_jsondoc *obj, const char *key, int required, const char *field,
                      const char *path, char **out, spine_err *e) {
  const spine_jsondoc *v = spine_jsondoc_get(obj, key);
  *out = NULL;
  if (!v) return required ? bad(e, path, obj->line, field, "is missing (expected a string)") : 0;
  if (v->type != SPINE_JSONDOC_STRING)
    return bad(e, path, v->line, field, "expected a string, got %s",
               spine_jsondoc_type_name(v->type));
  if (!v->str[0]) return bad(e, path, v->line, field, "is empty (expected a string)");
  *out = strdup(v->str);
  return *out ? 0 : spine_err_set(e, SPINE_ENOMEM, path, field, "out of memory");
}

static int get_date(const spine_jsondoc *obj, const char *key, const char *field, const char *path,
                    char **out, spine_err *e) {
  int rc = get_string(obj, key, 0, field, path, out, e);
  int64_t ms;
  if (!rc && *out && spine_duration_parse_time(*out, &ms, NULL))
    rc = bad(e, path, spine_jsondoc_get(obj, key)->line, field,
             "\"%s\" is not a date (expected YYYY-MM-DD)", *out);
  return rc;
}

static int parse_input(spine_manifest *m, const spine_jsondoc *in, spine_err *e) {
  if (in->type != SPINE_JSONDOC_OBJECT)
    return bad(e, m->path, in->line, "input", "expected an object of field: type, got %s",
               spine_jsondoc_type_name(in->type));
  m->input = calloc((size_t)in->count + 1, sizeof *m->input);
  if (!m->input) return spine_err_set(e, SPINE_ENOMEM, m->path, "input", "out of memory");
  for (const spine_jsondoc *c = in->child; c; c = c->next) {
    char field[64];
    snprintf(field, sizeof field, "input.%s", c->key);
    if (c->type != SPINE_JSONDOC_STRING || !spine_manifest_known_type(c->str))
      return bad(e, m->path, c->line, field,
                 "bad type (expected \"string\", \"number\", \"integer\", \"boolean\", \"table\" "
                 "or \"date\", optionally followed by ?)");
    spine_manifest_field *f = &m->input[m->ninput++];
    f->name = strdup(c->key);
    f->type = strdup(c->str);
    f->line = c->line;
  }
  return 0;
}

static int parse_experiment(spine_manifest *m, const spine_jsondoc *x, spine_err *e) {
  static const char *const keys[] = {"id", "owner", "started", "ends", "description", NULL};
  if (x->type != SPINE_JSONDOC_OBJECT)
    return bad(e, m->path, x->line, "experiment", "expected an object, got %s",
               spine_jsondoc_type_name(x->type));
  int rc = only(x, keys, "experiment.", m->path, "id, owner, started, ends, description", e);
  if (!rc) rc = get_string(x, "id", 1, "experiment.id", m->path, &m->experiment, e);
  if (!rc && !good_name(m->experiment))
    rc = bad(e, m->path, spine_jsondoc_get(x, "id")->line, "experiment.id",
             "\"%s\" is not a name (expected letters, digits, _ - .)", m->experiment);
  if (!rc) rc = get_string(x, "owner", 0, "experiment.owner", m->path, &m->owner, e);
  if (!rc) rc = get_date(x, "started", "experiment.started", m->path, &m->started, e);
  if (!rc) rc = get_date(x, "ends", "experiment.ends", m->path, &m->ends, e);
  if (!rc && m->ends) m->ends_line = spine_jsondoc_get(x, "ends")->line;
  if (!rc && m->started && m->ends && strcmp(m->ends, m->started) < 0)
    rc = bad(e, m->path, m->ends_line, "experiment.ends", "%s is before started %s", m->ends,
             m->started);
  return rc;
}

/* The variant's "params": an object of at most SPINE_MANIFEST_PARAMS_MAX bytes, kept as text. */
static int parse_params(spine_manifest *m, spine_manifest_variant *var, const spine_jsondoc *p,
                        const char *field, spine_err *e) {
  if (p->type != SPINE_JSONDOC_OBJECT)
    return bad(e, m->path, p->line, field,
               "expected an object of parameters (ctx.param(name) reads one), got %s",
               spine_jsondoc_type_name(p->type));
  spine_buf b = SPINE_BUF_INIT;
  spine_jsondoc_write(p, &b);
  if (b.len > SPINE_MANIFEST_PARAMS_MAX) {
    size_t n = b.len;
    spine_buf_free(&b);
    return bad(e, m->path, p->line, field, "%zu bytes of parameters (at most %d)", n,
               SPINE_MANIFEST_PARAMS_MAX);
  }
  var->params = strdup(spine_buf_str(&b));
  spine_buf_free(&b);
  return var->params ? 0 : spine_err_set(e, SPINE_ENOMEM, m->path, field, "out of memory");
}

static int parse_variant(spine_manifest *m, int i, const spine_jsondoc *v, spine_err *e) {
  static const char *const keys[] = {"name", "playbook", "params", "weight", "description", NULL};
  char prefix[32], field[64];
  snprintf(prefix, sizeof prefix, "variants[%d].", i);
  if (v->type != SPINE_JSONDOC_OBJECT)
    return bad(e, m->path, v->line, prefix, "expected an object {name, playbook, weight}, got %s",
               spine_jsondoc_type_name(v->type));
  spine_manifest_variant *var = &m->variants[i];
  var->line = v->line;
  int rc = only(v, keys, prefix, m->path, "name, playbook, params, weight, description", e);
  snprintf(field, sizeof field, "%sname", prefix);
  if (!rc) rc = get_string(v, "name", 1, field, m->path, &var->name, e);
  if (!rc && !good_name(var->name))
    return bad(e, m->path, v->line, field, "\"%s\" is not a name (expected letters, digits, _ - .)",
               var->name);
  for (int k = 0; !rc && k < i; k++)
    if (!strcmp(m->variants[k].name, var->name))
      return bad(e, m->path, v->line, field, "variant \"%s\" is already named at line %d",
                 var->name, m->variants[k].line);
  snprintf(field, sizeof field, "%splaybook", prefix);
  if (!rc) rc = get_string(v, "playbook", 0, field, m->path, &var->playbook, e);
  if (!rc && !var->playbook && !(var->playbook = strdup(m->process)))
    rc = spine_err_set(e, SPINE_ENOMEM, m->path, field, "out of memory");
  snprintf(field, sizeof field, "%sparams", prefix);
  const spine_jsondoc *params = spine_jsondoc_get(v, "params");
  if (!rc && params) rc = parse_params(m, var, params, field, e);
  if (rc) return rc;
  snprintf(field, sizeof field, "%sweight", prefix);
  const spine_jsondoc *w = spine_jsondoc_get(v, "weight");
  if (!w) return bad(e, m->path, v->line, field, "is missing (expected a percentage)");
  if (w->type != SPINE_JSONDOC_NUMBER)
    return bad(e, m->path, w->line, field, "expected a number (a percentage), got %s",
               spine_jsondoc_type_name(w->type));
  double scaled = w->num * 100;
  if (!(w->num > 0) || w->num > 100 || fabs(scaled - round(scaled)) > 1e-6)
    return bad(e, m->path, w->line, field,
               "%g is not a weight (expected a percentage above 0, at most 100, in steps of "
               "0.01)",
               w->num);
  var->weight = w->num;
  var->buckets = (int)round(scaled);
  return 0;
}

static int parse_variants(spine_manifest *m, const spine_jsondoc *root, spine_err *e) {
  const spine_jsondoc *vs = spine_jsondoc_get(root, "variants");
  if (!vs)
    return bad(e, m->path, root->line, "variants",
               "is missing (expected an array of {name, playbook, weight})");
  if (vs->type != SPINE_JSONDOC_ARRAY || vs->count == 0)
    return bad(e, m->path, vs->line, "variants",
               "expected a non-empty array of {name, playbook, weight}");
  m->variants = calloc((size_t)vs->count, sizeof *m->variants);
  if (!m->variants) return spine_err_set(e, SPINE_ENOMEM, m->path, "variants", "out of memory");
  int total = 0;
  for (const spine_jsondoc *c = vs->child; c; c = c->next) {
    int rc = parse_variant(m, m->nvariants, c, e);
    m->nvariants++; /* counted even when half-filled, so free releases it */
    if (rc) return rc;
    total += m->variants[m->nvariants - 1].buckets;
  }
  if (total != SPINE_MANIFEST_BUCKETS)
    return bad(e, m->path, vs->line, "variants", "weights sum to %g (expected 100)", total / 100.0);
  return 0;
}

static int parse_overrides(spine_manifest *m, const spine_jsondoc *o, spine_err *e) {
  if (o->type != SPINE_JSONDOC_OBJECT)
    return bad(e, m->path, o->line, "overrides",
               "expected an object of subject: variant name, got %s",
               spine_jsondoc_type_name(o->type));
  m->overrides = calloc((size_t)o->count + 1, sizeof *m->overrides);
  if (!m->overrides) return spine_err_set(e, SPINE_ENOMEM, m->path, "overrides", "out of memory");
  for (const spine_jsondoc *c = o->child; c; c = c->next) {
    char field[64];
    snprintf(field, sizeof field, "overrides.%s", c->key);
    if (c->type != SPINE_JSONDOC_STRING)
      return bad(e, m->path, c->line, field, "expected a variant name, got %s",
                 spine_jsondoc_type_name(c->type));
    if (!spine_manifest_variant_named(m, c->str))
      return bad(e, m->path, c->line, field,
                 "unknown variant \"%s\" (expected one of the variants)", c->str);
    spine_manifest_override *ov = &m->overrides[m->noverrides++];
    ov->subject = strdup(c->key);
    ov->variant = strdup(c->str);
    ov->line = c->line;
  }
  return 0;
}

static int parse_events(spine_manifest *m, const spine_jsondoc *ev, spine_err *e) {
  if (ev->type != SPINE_JSONDOC_ARRAY)
    return bad(e, m->path, ev->line, "on_events", "expected an array of event names, got %s",
               spine_jsondoc_type_name(ev->type));
  m->on_events = calloc((size_t)ev->count + 1, sizeof *m->on_events);
  if (!m->on_events) return spine_err_set(e, SPINE_ENOMEM, m->path, "on_events", "out of memory");
  for (const spine_jsondoc *c = ev->child; c; c = c->next) {
    char field[64];
    snprintf(field, sizeof field, "on_events[%d]", m->nevents);
    if (c->type != SPINE_JSONDOC_STRING || !good_name(c->str))
      return bad(e, m->path, c->line, field, "expected an event name (letters, digits, _ - .)");
    for (int k = 0; k < m->nevents; k++)
      if (!strcmp(m->on_events[k], c->str))
        return bad(e, m->path, c->line, field, "event \"%s\" is listed twice", c->str);
    m->on_events[m->nevents++] = strdup(c->str);
  }
  return 0;
}

/* "max_duration": "90d": how long a case of the process may run before it is failed. */
static int parse_max_duration(spine_manifest *m, const spine_jsondoc *md, spine_err *e) {
  spine_err de;
  spine_err_clear(&de);
  if (md->type != SPINE_JSONDOC_STRING)
    return bad(e, m->path, md->line, "max_duration", "expected a duration such as \"90d\", got %s",
               spine_jsondoc_type_name(md->type));
  if (spine_duration_parse(md->str, &m->max_duration_ms, &de))
    return bad(e, m->path, md->line, "max_duration", "%s", de.msg);
  if (m->max_duration_ms <= 0)
    return bad(e, m->path, md->line, "max_duration", "must be above zero (expected \"90d\"...)");
  m->max_duration = strdup(md->str);
  if (!m->max_duration) return spine_err_set(e, SPINE_ENOMEM, m->path, NULL, "out of memory");
  return 0;
}

/* "outcome": "result.outcome": where a completed case's result names its outcome, for
 * playbooks that do not call ctx.outcome: "result." and one to four names, dot-separated. */
static int parse_outcome(spine_manifest *m, const spine_jsondoc *o, spine_err *e) {
  static const char want[] = "expected a path into the result such as \"result.outcome\"";
  if (o->type != SPINE_JSONDOC_STRING)
    return bad(e, m->path, o->line, "outcome", "%s, got %s", want,
               spine_jsondoc_type_name(o->type));
  const char *p = o->str + 7;
  int names = 0, ok = !strncmp(o->str, "result.", 7);
  while (ok) {
    if (!(isalpha((unsigned char)*p) || *p == '_')) {
      ok = 0;
      break;
    }
    while (isalnum((unsigned char)*p) || *p == '_')
      p++;
    names++;
    if (!*p) break;
    ok = *p++ == '.';
  }
  if (!ok || names < 1 || names > 4)
    return bad(e, m->path, o->line, "outcome", "%s (one to four names), got \"%s\"", want, o->str);
  m->outcome = strdup(o->str);
  return m->outcome ? 0 : spine_err_set(e, SPINE_ENOMEM, m->path, NULL, "out of memory");
}

static int parse_root(spine_manifest *m, const spine_jsondoc *root, spine_err *e) {
  static const char *const keys[] = {"process",      "description", "input",     "subject",
                                     "experiment",   "variants",    "overrides", "on_events",
                                     "max_duration", "outcome",     NULL};
  if (root->type != SPINE_JSONDOC_OBJECT)
    return bad(e, m->path, root->line, "", "expected a JSON object, got %s",
               spine_jsondoc_type_name(root->type));
  int rc = only(root, keys, "", m->path,
                "process, description, input, subject, experiment, variants, overrides, "
                "on_events, max_duration, outcome",
                e);
  if (!rc) rc = get_string(root, "process", 1, "process", m->path, &m->process, e);
  if (rc) return rc;
  m->process_line = spine_jsondoc_get(root, "process")->line;
  if (!good_name(m->process))
    return bad(e, m->path, m->process_line, "process",
               "\"%s\" is not a name (expected letters, digits, _ - .)", m->process);
  const spine_jsondoc *d = spine_jsondoc_get(root, "description");
  if (d && d->type != SPINE_JSONDOC_STRING)
    return bad(e, m->path, d->line, "description", "expected a string");
  const spine_jsondoc *in = spine_jsondoc_get(root, "input");
  if (!in) return bad(e, m->path, root->line, "input", "is missing (expected field: type)");
  if ((rc = parse_input(m, in, e))) return rc;
  if ((rc = get_string(root, "subject", 1, "subject", m->path, &m->subject, e))) return rc;
  const char *st = spine_manifest_input_type(m, m->subject);
  if (!st || (strncmp(st, "string", 6) && strncmp(st, "integer", 7)))
    return bad(e, m->path, spine_jsondoc_get(root, "subject")->line, "subject",
               "\"%s\" is not a string or integer field of input (expected the input field "
               "that identifies the case)",
               m->subject);
  const spine_jsondoc *x = spine_jsondoc_get(root, "experiment");
  if (x && (rc = parse_experiment(m, x, e))) return rc;
  if ((rc = parse_variants(m, root, e))) return rc;
  const spine_jsondoc *o = spine_jsondoc_get(root, "overrides");
  if (o && (rc = parse_overrides(m, o, e))) return rc;
  const spine_jsondoc *ev = spine_jsondoc_get(root, "on_events");
  if (ev && (rc = parse_events(m, ev, e))) return rc;
  const spine_jsondoc *md = spine_jsondoc_get(root, "max_duration");
  if (md && (rc = parse_max_duration(m, md, e))) return rc;
  const spine_jsondoc *oc = spine_jsondoc_get(root, "outcome");
  if (oc && (rc = parse_outcome(m, oc, e))) return rc;
  return 0;
}

int spine_manifest_parse(const char *path, const char *text, size_t len, spine_manifest **out,
                         spine_err *e) {
  *out = NULL;
  spine_manifest *m = calloc(1, sizeof *m);
  if (!m) return spine_err_set(e, SPINE_ENOMEM, path, NULL, "out of memory");
  m->path = strdup(path);
  m->text = malloc(len + 1);
  if (!m->path || !m->text) {
    spine_manifest_free(m);
    return spine_err_set(e, SPINE_ENOMEM, path, NULL, "out of memory");
  }
  memcpy(m->text, text, len);
  m->text[len] = '\0';
  m->len = len;
  spine_sha256_hex(text, len, m->hash);
  spine_jsondoc *doc = NULL;
  int line = 0;
  spine_err pe;
  spine_err_clear(&pe);
  int rc = spine_jsondoc_parse(text, len, &doc, &line, &pe);
  if (rc)
    bad(e, path, line, pe.field[0] ? pe.field : "", "malformed JSON: %s", pe.msg);
  else
    rc = parse_root(m, doc, e);
  spine_jsondoc_free(doc);
  if (rc) {
    spine_manifest_free(m);
    return rc;
  }
  *out = m;
  return 0;
}

void spine_manifest_free(spine_manifest *m) {
  if (!m) return;
  for (int i = 0; i < m->ninput; i++) {
    free(m->input[i].name);
    free(m->input[i].type);
  }
  for (int i = 0; i < m->nvariants; i++) {
    free(m->variants[i].name);
    free(m->variants[i].playbook);
    free(m->variants[i].params);
  }
  for (int i = 0; i < m->noverrides; i++) {
    free(m->overrides[i].subject);
    free(m->overrides[i].variant);
  }
  for (int i = 0; i < m->nevents; i++)
    free(m->on_events[i]);
  free(m->input);
  free(m->variants);
  free(m->overrides);
  free(m->on_events);
  free(m->max_duration);
  free(m->outcome);
  free(m->path);
  free(m->text);
  free(m->process);
  free(m->subject);
  free(m->experiment);
  free(m->owner);
  free(m->started);
  free(m->ends);
  free(m);
}

const spine_manifest_variant *spine_manifest_variant_named(const spine_manifest *m,
                                                           const char *name) {
  for (int i = 0; i < m->nvariants; i++)
    if (m->variants[i].name && !strcmp(m->variants[i].name, name)) return &m->variants[i];
  return NULL;
}

const char *spine_manifest_input_type(const spine_manifest *m, const char *name) {
  for (int i = 0; i < m->ninput; i++)
    if (!strcmp(m->input[i].name, name)) return m->input[i].type;
  return NULL;
}
