/* Single sign-on for the API (issue 14 §2): a bearer that is not an API token is checked as a
 * JWT of the identity provider named in the environment (SPINE_JWKS_FILE, docs/security.md),
 * against the keys of its JWKS file (runtime/base/jwt.c). The file is read once at start,
 * before anything is connected, so a bad key stops the start; the keys never change after, and
 * the API's worker threads share them. The token's subject becomes the actor, the configured
 * claim its scopes. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jwt.h"
#include "log.h"
#include "server_internal.h"

static struct {
  spine_jwt_config cfg;
  spine_jwt_opts opts;
  spine_jwt_keys *keys;
} sso;

/* Appends the scopes that fit whole into p->scopes (comma-separated): a cut scope could read as
 * another, so one that does not fit is left out (and the request may then be refused 403). */
static void put_scopes(const spine_jwt_claims *cl, spine_api_principal *p) {
  size_t used = 0;
  p->scopes[0] = '\0';
  for (int i = 0; i < cl->nscopes; i++) {
    size_t n = strlen(cl->scopes[i]);
    if (used + (used ? 1 : 0) + n + 1 > sizeof p->scopes) continue;
    if (used) p->scopes[used++] = ',';
    memcpy(p->scopes + used, cl->scopes[i], n + 1);
    used += n;
  }
}

/* spine_server_bearer_fn, in a worker thread: 0 with *p, or SPINE_ENOTFOUND (answered 401). */
static int check(void *data, const char *bearer, size_t len, const char *peer,
                 spine_api_principal *p, spine_err *e) {
  (void)data;
  spine_jwt_claims cl;
  if (spine_jwt_verify(sso.keys, bearer, len, &sso.opts, (int64_t)time(NULL), &cl, e)) {
    spine_jwt_log_refusal(&cl, e, peer);
    e->code = SPINE_ENOTFOUND;
    return SPINE_ENOTFOUND;
  }
  if (strlen(cl.subject) >= sizeof p->subject)
    return spine_err_set(e, SPINE_ENOTFOUND, NULL, "sub",
                         "the token's subject is longer than %zu bytes", sizeof p->subject - 1);
  p->token_id[0] = '\0';
  snprintf(p->subject, sizeof p->subject, "%.*s", (int)(sizeof p->subject - 1), cl.subject);
  put_scopes(&cl, p);
  return 0;
}

int spine_server__sso_start(spine_err *e) {
  int rc = spine_jwt_config_from_env(&sso.cfg, e);
  if (rc || !sso.cfg.enabled) return rc;
  rc = spine_jwt_keys_load(sso.cfg.jwks_file, &sso.keys, e);
  if (rc) return rc;
  spine_jwt_config_opts(&sso.cfg, &sso.opts);
  spine_server__api_set_bearer(check, NULL);
  char n[16];
  snprintf(n, sizeof n, "%d", spine_jwt_keys_count(sso.keys));
  spine_log_info("auth", "single sign-on: bearer JWTs are checked against the JWKS file", "file",
                 sso.cfg.jwks_file, "keys", n, "issuer", sso.cfg.issuer, NULL);
  return 0;
}

void spine_server__sso_free(void) {
  spine_server__api_set_bearer(NULL, NULL);
  spine_jwt_keys_free(sso.keys);
  sso.keys = NULL;
}
