/* Single sign-on for the API (issue 14 §2): a bearer that is not an API token is checked as a
 * JWT of the identity provider named in the environment (SPINE_JWKS_FILE, docs/security.md),
 * against the keys of its JWKS file (runtime/base/jwt.c). The file is read at start, before
 * anything is connected, so a bad key stops the start; it is read again on SIGHUP (an identity
 * provider rotates its keys), in a libuv worker thread, and the new keys replace the old ones
 * only when the whole file is good: a bad file is logged and the keys in force stay. The API's
 * worker threads read the keys under a read lock; the swap takes the write lock. The token's
 * subject becomes the actor, the configured claim its scopes. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "jwt.h"
#include "log.h"
#include "server_internal.h"

static struct {
  spine_jwt_config cfg;
  spine_jwt_opts opts;
  uv_rwlock_t lock; /* over keys */
  int locked;       /* the lock was made */
  spine_jwt_keys *keys;
  /* reloads on SIGHUP */
  uv_signal_t sighup;
  uv_work_t work;
  int watching, busy, again, closing;
  spine_jwt_keys *fresh; /* the thread's result, read by the loop after it */
  int rc;
  spine_err err;
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
  uv_rwlock_rdlock(&sso.lock);
  int rc = spine_jwt_verify(sso.keys, bearer, len, &sso.opts, (int64_t)time(NULL), &cl, e);
  uv_rwlock_rdunlock(&sso.lock);
  if (rc) {
    spine_jwt_log_refusal(&cl, e, peer);
    e->code = SPINE_ENOTFOUND;
    return SPINE_ENOTFOUND;
  }
  size_t n = strlen(cl.subject);
  if (n >= sizeof p->subject)
    return spine_err_set(e, SPINE_ENOTFOUND, NULL, "sub",
                         "the token's subject is longer than %zu bytes", sizeof p->subject - 1);
  p->token_id[0] = '\0';
  memcpy(p->subject, cl.subject, n + 1);
  put_scopes(&cl, p);
  return 0;
}

/* Logs what a load kept and what it left out. */
static void log_keys(const char *msg, const spine_jwt_keys *keys) {
  char n[16];
  snprintf(n, sizeof n, "%d", spine_jwt_keys_count(keys));
  spine_log_info("auth", msg, "file", sso.cfg.jwks_file, "keys", n, "issuer", sso.cfg.issuer, NULL);
  for (int i = 0; spine_jwt_keys_skipped(keys, i); i++)
    spine_log_warn("auth", "a key of the JWKS file is not used", "file", sso.cfg.jwks_file, "key",
                   spine_jwt_keys_skipped(keys, i), NULL);
}

static void reload_work(uv_work_t *w) {
  (void)w;
  spine_err_clear(&sso.err);
  sso.rc = spine_jwt_keys_load(sso.cfg.jwks_file, &sso.fresh, &sso.err);
}

static void start_reload(void);

static void reload_done(uv_work_t *w, int status) {
  (void)w;
  sso.busy = 0;
  if (status == 0 && sso.rc == 0) {
    uv_rwlock_wrlock(&sso.lock);
    spine_jwt_keys *old = sso.keys;
    sso.keys = sso.fresh;
    uv_rwlock_wrunlock(&sso.lock);
    spine_jwt_keys_free(old);
    log_keys("single sign-on: the JWKS file is reloaded", sso.keys);
  } else {
    char msg[512];
    spine_jwt_keys_free(sso.fresh);
    spine_log_error("auth", "JWKS file refused: the keys in force are unchanged", "file",
                    sso.cfg.jwks_file, "reason", spine_err_format(&sso.err, msg, sizeof msg), NULL);
  }
  sso.fresh = NULL;
  if (sso.again && !sso.closing) {
    sso.again = 0;
    start_reload();
  }
}

static void start_reload(void) {
  if (sso.busy) {
    sso.again = 1; /* a SIGHUP during a reload: once more after it */
    return;
  }
  sso.busy = 1;
  uv_queue_work(sso.sighup.loop, &sso.work, reload_work, reload_done);
}

static void on_sighup(uv_signal_t *h, int signum) {
  (void)h, (void)signum;
  spine_log_info("auth", "SIGHUP: reloading the JWKS file", "file", sso.cfg.jwks_file, NULL);
  start_reload();
}

int spine_server__sso_start(spine_err *e) {
  int rc = spine_jwt_config_from_env(&sso.cfg, e);
  if (rc || !sso.cfg.enabled) return rc;
  rc = spine_jwt_keys_load(sso.cfg.jwks_file, &sso.keys, e);
  if (rc) return rc;
  if (uv_rwlock_init(&sso.lock)) {
    spine_jwt_keys_free(sso.keys);
    sso.keys = NULL;
    return spine_err_set(e, SPINE_ENOMEM, "serve", NULL, "cannot make the keys' lock");
  }
  sso.locked = 1;
  spine_jwt_config_opts(&sso.cfg, &sso.opts);
  spine_server__api_set_bearer(check, NULL);
  log_keys("single sign-on: bearer JWTs are checked against the JWKS file", sso.keys);
  return 0;
}

void spine_server__sso_watch(uv_loop_t *loop) {
  if (!sso.cfg.enabled || sso.watching) return;
  sso.watching = 1;
  sso.closing = 0;
  uv_signal_init(loop, &sso.sighup);
  uv_signal_start(&sso.sighup, on_sighup, SIGHUP);
}

void spine_server__sso_stop(void) {
  sso.closing = 1;
  if (sso.watching && !uv_is_closing((uv_handle_t *)&sso.sighup))
    uv_close((uv_handle_t *)&sso.sighup, NULL);
}

void spine_server__sso_free(void) {
  spine_server__api_set_bearer(NULL, NULL);
  spine_jwt_keys_free(sso.keys);
  sso.keys = NULL;
  if (sso.locked) uv_rwlock_destroy(&sso.lock);
  sso.locked = 0;
  sso.watching = 0;
}
