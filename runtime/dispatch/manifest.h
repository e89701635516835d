/* A routing manifest (SPEC §7): which playbook variants serve a process, by what weights, for
 * which experiment, with overrides for named subjects and the events that start the process.
 * Parses and validates one manifest's text strictly; reads no files and touches no database. */
#ifndef SPINE_MANIFEST_H
#define SPINE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Weights are percentages of SPINE_MANIFEST_BUCKETS buckets: 0.01 % is one bucket. */
#define SPINE_MANIFEST_BUCKETS    10000
/* Bytes of one variant's parameters, as compact JSON. */
#define SPINE_MANIFEST_PARAMS_MAX 16384

typedef struct spine_manifest_variant {
  char *name;
  char *playbook; /* a name in the playbooks folder, or a path; default: the process's name */
  char *params;   /* the variant's parameters (ctx.param), a JSON object's text; NULL: none */
  double weight;  /* percent, > 0 */
  int buckets;    /* weight * 100 */
  int line;
} spine_manifest_variant;

typedef struct spine_manifest_field {
  char *name;
  char *type; /* as playbooks declare input: "string", "integer", "date?", ... */
  int line;
} spine_manifest_field;

typedef struct spine_manifest_override {
  char *subject;
  char *variant; /* the name of one of the variants */
  int line;
} spine_manifest_override;

/* Read-only once parsed. Owns every string and array. */
typedef struct spine_manifest {
  char *path; /* the file, for messages: "manifests/activation.json" */
  char *text; /* the JSON as read */
  size_t len;
  char hash[65]; /* sha256 of text */
  char *process;
  int process_line;
  char *subject;                /* the input field whose value is the subject key */
  char *experiment;             /* experiment id, NULL when none: the process name salts the hash */
  char *owner, *started, *ends; /* experiment facts, NULL when absent; dates as written */
  int ends_line;
  spine_manifest_field *input;
  int ninput;
  spine_manifest_variant *variants;
  int nvariants;
  spine_manifest_override *overrides;
  int noverrides;
  char **on_events;
  int nevents;
  char *outcome;           /* "result.outcome": the outcome of a completed case that named none with
                              ctx.outcome is its result's value there; NULL: no such rule */
  char *max_duration;      /* as written ("90d"), NULL when the process has no maximum */
  int64_t max_duration_ms; /* ... in ms: a case still running after it is failed */
} spine_manifest;

/* Parses and validates `len` bytes of `path`. Returns 0 and *out (free with
 * spine_manifest_free), or SPINE_EINVAL with e->where "path:line", e->field ("variants[1].weight")
 * and e->msg saying what is wrong and what is expected. */
int spine_manifest_parse(const char *path, const char *text, size_t len, spine_manifest **out,
                         spine_err *e);
void spine_manifest_free(spine_manifest *m);
/* The variant called `name`, or NULL. Borrowed from `m`. */
const spine_manifest_variant *spine_manifest_variant_named(const spine_manifest *m,
                                                           const char *name);
/* The declared type of input field `name` ("date?"), or NULL. */
const char *spine_manifest_input_type(const spine_manifest *m, const char *name);
/* Is `type` one a playbook may declare ("string", "integer?", ...)? */
int spine_manifest_known_type(const char *type);

#endif
