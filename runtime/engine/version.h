/* Playbook versions of an engine (version.c): compiled once, kept by hash, loaded from the
 * database for a claimed workflow this engine has not compiled. */
#ifndef SPINE_VERSION_H
#define SPINE_VERSION_H

#include <stddef.h>

#include "err.h"
#include "workflow.h"

/* The version of playbook `name_or_path`, read and compiled on first use. */
spine_version *spine_version_get(spine_engine *eng, const char *name_or_path, spine_err *e);
/* Compiles `source` as a version (`key` is what it is asked for by, may be NULL). */
spine_version *spine_version_compile(spine_engine *eng, const char *key, const char *path,
                                     const char *source, size_t len, const char *hash,
                                     spine_err *e);
/* The version with `hash` (a claimed row's), known or a new one to load (`name` until then). */
spine_version *spine_version_of_hash(spine_engine *eng, const char *hash, const char *name);
/* Its hash (64 hex), name, path and source (borrowed). */
const char *spine_version_hash(const spine_version *v);
const char *spine_version_name(const spine_version *v);
const char *spine_version_path(const spine_version *v);
const char *spine_version_source(const spine_version *v, size_t *len);
/* Registry ref to its compiled module, LUA_NOREF while not loaded. */
int spine_version_module(const spine_version *v);
/* Whether its source is known to be in spine.playbook_versions; mark it so. */
int spine_version_stored(const spine_version *v);
void spine_version_set_stored(spine_version *v);
/* Parks `wf` until `v` is loaded from the database (loading it if no one is): then the
 * workflow begins, or is given up when the version cannot be loaded. */
void spine_version_wait(spine_version *v, spine_wf *wf);
/* The store lost its connections: no load is under way any more, no workflow waits. */
void spine_version_forget_waiters(spine_engine *eng);
void spine_version_free_all(spine_engine *eng);

#endif
