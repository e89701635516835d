/* The manifests of a folder (every .json file of `manifests`), loaded and checked as one set: each
 * file parsed strictly, process names unique, and every variant's playbook found, compiled in the
 * sandbox and declaring no input the manifest does not give it. Reads files synchronously:
 * call it from the CLI or a worker thread, never from the loop. */
#ifndef SPINE_MANIFEST_SET_H
#define SPINE_MANIFEST_SET_H

#include "err.h"
#include "manifest.h"

typedef struct spine_manifest_set {
  spine_manifest **items; /* owned, in file-name order */
  int n;
} spine_manifest_set;

/* Receives each problem found: an error (warning = 0) or a warning. `e` is borrowed. */
typedef void (*spine_manifest_set_report_fn)(void *data, int warning, const spine_err *e);

/* Loads every *.json file of `dir` (a missing folder is an empty set) and checks the
 * playbooks they name in `playbooks_dir` (NULL = "playbooks"). Reports every problem through
 * `fn` (may be NULL) and returns the number of errors; `set` holds the manifests that parsed
 * (free with spine_manifest_set_free even when errors were found). */
int spine_manifest_set_load(const char *dir, const char *playbooks_dir, spine_manifest_set *set,
                            spine_manifest_set_report_fn fn, void *data);
void spine_manifest_set_free(spine_manifest_set *set);
/* The manifest of `process`, or NULL. Borrowed. */
const spine_manifest *spine_manifest_set_find(const spine_manifest_set *set, const char *process);
/* Checks the playbooks of one manifest (found, compiles, input declared); returns the number
 * of errors, each reported through `fn`. */
int spine_manifest_set_check_playbooks(const spine_manifest *m, const char *playbooks_dir,
                                       spine_manifest_set_report_fn fn, void *data);

#endif
