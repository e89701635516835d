/* The dispatcher's intake of cases: the manifests in force (kept in the database, replaced
 * whole by a reload that accepted every manifest), routing a case by them, and storing it.
 * Blocking libpq: for the CLI, or a worker thread of `spine serve`, never its loop. */
#ifndef SPINE_INTAKE_H
#define SPINE_INTAKE_H

#include <libpq-fe.h>

#include "dispatch.h"
#include "manifest_set.h"

/* $SPINE_MANIFESTS, else "manifests"; $SPINE_PLAYBOOKS, else NULL (= "playbooks"). */
const char *spine_intake_manifests_dir(void);
const char *spine_intake_playbooks_dir(void);

/* Loads and checks the manifests folder; if every manifest passed, makes it the set in force
 * in one transaction (recording `by` in spine.manifest_loads). With `only_if_never`, does
 * nothing once any set was loaded. Problems go to `fn`. Returns 0 (*loaded = manifests in the
 * new set, -1 if nothing was loaded), SPINE_EINVAL when refused (the set in force is
 * unchanged; e says how many errors), or SPINE_EDB. */
int spine_intake_manifests_reload(PGconn *c, const char *by, int only_if_never,
                                  spine_manifest_set_report_fn fn, void *data, int *loaded,
                                  spine_err *e);

/* The manifest in force for `process` (*out = NULL when there is none; free with
 * spine_manifest_free). Loads the folder first if no set was ever loaded. */
int spine_intake_manifest_in_force(PGconn *c, const char *process, spine_manifest **out,
                                   spine_err *e);

/* Checks `input_json` against m's input schema (e->field names the bad field), takes the
 * subject key (`subject_opt`, else the input's subject field) and routes it. *subject is
 * malloc'd (caller frees). */
int spine_intake_route_case(const spine_manifest *m, const char *input_json,
                            const char *subject_opt, spine_route *route, char **subject,
                            spine_err *e);

/* A case to start: process (a manifest's process, else a playbook name or path), input JSON
 * (NULL = {}), and optional subject (overrides the manifest's subject field), idempotency key
 * and trace id. */
typedef struct spine_intake_case {
  const char *process;
  const char *input;
  const char *subject;
  const char *key;
  const char *trace;
  int *existing; /* may be NULL: set to 1 when the key had started the case before, else 0 */
} spine_intake_case;

/* Stores a new case as `spine start` does: routes it by the manifest in force, checks the
 * input against the manifest and the playbook, stores version and pending workflow, notifies
 * the workers. The same key never starts two: its first workflow's id comes back. Returns 0
 * with the workflow id in id_out, or an error (*code = "not_found" when the playbook cannot
 * be read, else NULL). */
int spine_intake_start_case(PGconn *c, const spine_intake_case *req, char id_out[40],
                            const char **code, spine_err *e);

#endif
