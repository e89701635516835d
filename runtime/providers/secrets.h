/* The secret values adapters were handed, with the simple forms an adapter may turn them into,
 * and their removal from whatever leaves an adapter: results, errors, actions and log lines get
 * "[secret]" in their place. One set serves every call of a registry for its whole life, so a
 * secret an adapter kept in its module state is scrubbed from a later call that never read it.
 * Owns its copies and wipes them when freed; never logs or returns a value it holds. */
#ifndef SPINE_SECRETS_H
#define SPINE_SECRETS_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SPINE_SECRETS_REDACTED "[secret]"
/* Forms shorter than this are not kept: they would scrub ordinary words. */
#define SPINE_SECRETS_MIN_FORM 8
/* Secrets one set holds at most (each with its forms): past it, remembering fails, and the
 * caller refuses to hand the value out rather than hand out what it cannot scrub. */
#define SPINE_SECRETS_MAX      256

typedef struct spine_secrets {
  /* Every form of every secret, longest first (so that a form inside another is never
   * replaced first), each len[i] bytes. */
  char **v;
  size_t *len;
  int n, cap;
  int secrets; /* values remembered (each added up to a dozen forms) */
  /* A bit per hash of a form's first 8 bytes (forms have at least SPINE_SECRETS_MIN_FORM):
   * a text position whose 8 bytes hash to a clear bit starts no form. */
  uint64_t heads[64];
} spine_secrets;

/* Keeps a copy of v[len] and of its forms: upper and lower case; standard and URL-safe base64,
 * with and without padding, and the part of each that stays the same wherever the value sits in
 * a longer base64 text ("Basic " .. b64("user:" .. v)); lower- and upper-case hex. Forms shorter
 * than SPINE_SECRETS_MIN_FORM are left out. Returns the copy of v (the earlier one for a value
 * already held; "" for an empty one, never matched), or NULL without memory or when the set
 * holds SPINE_SECRETS_MAX values already. */
const char *spine_secrets_remember(spine_secrets *s, const char *v, size_t len);
/* Wipes and frees the copies; `s` is empty after. */
void spine_secrets_free(spine_secrets *s);
/* Whether text[len] holds any of the forms. */
int spine_secrets_contains(const spine_secrets *s, const char *text, size_t len);
/* Appends text[len] to out with every form replaced. 0 or SPINE_ENOMEM. */
int spine_secrets_append(const spine_secrets *s, spine_buf *out, const char *text, size_t len);
/* The same in place in a NUL-terminated text of size `size` (truncated if it grows past). */
void spine_secrets_scrub_text(const spine_secrets *s, char *text, size_t size);
/* Replaces every form in the strings (keys and values) of the JSON text, rewriting `json` in
 * place (canonical JSON after; untouched when no secret can be in it). Runs a protected call
 * on L. Returns 0, or SPINE_ENOMEM / SPINE_EINVAL with `json` emptied: never kept raw. */
int spine_secrets_scrub_json(lua_State *L, const spine_secrets *s, spine_buf *json);

#endif
