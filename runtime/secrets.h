/* The secret values one provider call (or webhook) read, and their removal from whatever
 * leaves it: results, errors, actions and log lines get "[secret]" in their place. Owns its
 * copies and wipes them when freed; never logs or returns a value it holds. */
#ifndef SPINE_SECRETS_H
#define SPINE_SECRETS_H

#include <lua.h>
#include <stddef.h>

#include "buf.h"

#define SPINE_SECRETS_REDACTED "[secret]"

typedef struct spine_secrets {
  char **v; /* longest first, so that a secret inside another is never replaced first */
  int n;
} spine_secrets;

/* Keeps a copy of v[len] (an empty value is kept too but never matched). Returns the copy
 * (the earlier one for a value already held), or NULL without memory. */
const char *spine_secrets_remember(spine_secrets *s, const char *v, size_t len);
/* Wipes and frees the copies; `s` is empty after. */
void spine_secrets_free(spine_secrets *s);
/* Whether text[len] holds any of the secrets. */
int spine_secrets_contains(const spine_secrets *s, const char *text, size_t len);
/* Appends text[len] to out with every secret replaced. 0 or SPINE_ENOMEM. */
int spine_secrets_append(const spine_secrets *s, spine_buf *out, const char *text, size_t len);
/* The same in place in a NUL-terminated text of size `size` (truncated if it grows past). */
void spine_secrets_scrub_text(const spine_secrets *s, char *text, size_t size);
/* Replaces every secret in the strings (keys and values) of the JSON text, rewriting `json` in
 * place (canonical JSON after; untouched when no secret can be in it). Runs a protected call
 * on L. Returns 0, or SPINE_ENOMEM / SPINE_EINVAL with `json` emptied: never kept raw. */
int spine_secrets_scrub_json(lua_State *L, const spine_secrets *s, spine_buf *json);

#endif
