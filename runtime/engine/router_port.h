/* The router port: how the engine sends a child workflow (ctx.start, ctx.child) through the
 * dispatcher, as `spine start` sends a case. The engine owns this interface; runtime/dispatch
 * implements it (spine_router_port) over the manifests in force it keeps in memory, and
 * whoever assembles an engine hands the port to spine_engine_new. Routing is a pure function
 * of the manifest and the input: it runs on the loop, without I/O. What it chose is written
 * into the child's row in the step that starts it, so a replay never routes again. */
#ifndef SPINE_ROUTER_PORT_H
#define SPINE_ROUTER_PORT_H

#include <stdint.h>

#include "err.h"

/* Where a case of a process goes: its variant, and what the dispatcher records with it. The
 * strings are the implementation's until `release`; those the manifest does not give are
 * NULL. */
typedef struct spine_child_route {
  char *playbook;   /* the variant's playbook, by name */
  char *variant;    /* the variant's name */
  char *experiment; /* the manifest's experiment id */
  char *subject;    /* the subject key the case was routed by */
  char *params;     /* the variant's parameters, a JSON object */
  char *max_duration;
  int64_t max_duration_ms; /* 0: none */
  int bucket;              /* 0..9999 */
} spine_child_route;

typedef struct spine_router_port {
  void *impl; /* NULL: no dispatcher, every child runs the playbook its process names */
  /* Routes a case of `process` with input `input_json` (subject: the subject key, or NULL for
   * the manifest's subject field of the input). Returns 1 with *out filled when a manifest in
   * force routes the process (release it once used), 0 when none does, or SPINE_EINVAL when
   * the manifest refuses the input (e->field names the field: "input.contract_id"). */
  int (*route)(void *impl, const char *process, const char *input_json, const char *subject,
               spine_child_route *out, spine_err *e);
  /* Frees what route filled in (a zeroed route: nothing). */
  void (*release)(void *impl, spine_child_route *r);
} spine_router_port;

#endif
