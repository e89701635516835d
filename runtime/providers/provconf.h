/* providers/providers.json: the settings of each provider (base_url and any other keys, seen
 * by adapters as p.config; rate_limit, timeout, breaker, channels, allowed_hosts), the
 * per-environment override blocks, and the SMTP relay p.email sends through. Validates strictly,
 * naming file, line and field; owns the parsed document and each provider's list of the hosts
 * its p.http may reach. Knows nothing of adapters or the loop. */
#ifndef SPINE_PROVCONF_H
#define SPINE_PROVCONF_H

#include <lua.h>
#include <stdint.h>

#include "err.h"
#include "http_client.h"
#include "jsondoc.h"

#define SPINE_PROVCONF_BREAKER_FAILURES 5
#define SPINE_PROVCONF_BREAKER_COOLDOWN 30000

/* One provider's settings, with its environment's overrides applied. */
typedef struct spine_provconf_entry {
  const char *name;
  const spine_jsondoc *base; /* its block in providers.json (borrowed from the document) */
  const spine_jsondoc *over; /* environments.<env>.<name>, or NULL */
  double rate_limit;         /* requests per second; 0 = unlimited */
  int64_t timeout_ms;        /* per channel attempt; 0 = not set */
  int breaker_failures;      /* consecutive transient failures that open a breaker */
  int64_t breaker_cooldown_ms;
  const spine_jsondoc *channels; /* an array of channel names, or NULL (the adapter's order) */
  int line;                      /* where the block starts (for messages) */
  /* Where p.http may go: base_url's host on base_url's port (80 or 443 when it names none),
   * then each of allowed_hosts ("host": any port; "host:port"). None: nowhere. Owned. */
  spine_http_client_host *hosts;
  int nhosts;
} spine_provconf_entry;

typedef struct spine_provconf {
  char path[256]; /* "providers/providers.json" */
  spine_jsondoc *doc;
  spine_provconf_entry *entries;
  int n;
  const char *smtp_url; /* borrowed from doc; defaults "smtp://127.0.0.1:25", "spine@localhost" */
  const char *smtp_from;
} spine_provconf;

/* Reads `dir`/providers.json (a missing file is no settings) and applies the override block of
 * `environment` (NULL or "" = none; an environment the file does not name is none too).
 * Returns 0, or SPINE_EINVAL / SPINE_EIO with e->where "file:line" and e->field
 * ("acme.rate_limit"). Free with spine_provconf_free (also after an error). */
int spine_provconf_load(const char *dir, const char *environment, spine_provconf *out,
                        spine_err *e);
void spine_provconf_free(spine_provconf *c);
/* The settings of `provider`, or NULL. Borrowed. */
const spine_provconf_entry *spine_provconf_find(const spine_provconf *c, const char *provider);
/* 1 when a provider with settings `en` (may be NULL: no settings) may send p.http to `d`. */
int spine_provconf_reaches(const spine_provconf_entry *en, const spine_http_client_dest *d);
/* Pushes p.config: every key of the block (and its override), rate_limit and the others
 * included, as a read-only table (nested tables read-only too). Raises on Lua OOM only; an
 * entry of NULL pushes an empty read-only table. */
void spine_provconf_push_config(lua_State *L, const spine_provconf_entry *en);
/* Pushes a read-only view of the table at `idx` (reads, pairs and # go to it; writes raise). */
void spine_provconf_push_readonly(lua_State *L, int idx);

#endif
