/* The dispatcher's routing of child workflows: the engine's router port (router_port.h) over
 * the manifests in force, held in memory so that a route costs no I/O on the loop. The set is
 * read from the database (blocking: before the loop runs, or in a worker thread) and put in
 * force whole from the loop thread, when a reload is heard of (spine_intake_manifests_reload
 * notifies SPINE_CHILD_ROUTER_CHANNEL) or after a reconnect. */
#ifndef SPINE_CHILD_ROUTER_H
#define SPINE_CHILD_ROUTER_H

#include <libpq-fe.h>

#include "manifest_set.h"
#include "router_port.h"

/* The LISTEN channel a reload of the manifests in force notifies (payload: its load id). */
#define SPINE_CHILD_ROUTER_CHANNEL "spine_manifests"

typedef struct spine_child_router spine_child_router;

/* An empty router (it routes nothing until a set is put); NULL without memory. */
spine_child_router *spine_child_router_new(void);
void spine_child_router_free(spine_child_router *r);
/* Reads the manifests in force into `out` (empty when none was ever loaded) and the id of their
 * load (0: none). Blocking. A stored manifest that no longer parses (a newer version's stricter
 * rules) is left out and reported through `fn` (may be NULL): children of its process then run
 * the playbook of its name, and the worker still starts. 0, or SPINE_EDB / SPINE_ENOMEM. */
int spine_child_router_read(PGconn *c, spine_manifest_set *out, long long *load,
                            spine_manifest_set_report_fn fn, void *data, spine_err *e);
/* Routes by `set` from now on (its manifests move into the router; `set` is left empty). A set
 * of an older load than the one in force is dropped. From the loop thread only. */
void spine_child_router_put(spine_child_router *r, spine_manifest_set *set, long long load);
/* The load whose manifests route now (0: none). */
long long spine_child_router_load(const spine_child_router *r);
/* The port to hand to spine_engine_new; the router must outlive the engine. */
spine_router_port spine_child_router_port(spine_child_router *r);

#endif
