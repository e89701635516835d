/* Playbook versions (engine_internal.h): a playbook's source is compiled once per engine and
 * kept by its hash; a claimed workflow's version comes from spine.playbook_versions when this
 * engine has not compiled it, the workflows that need it waiting for the one load. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "log.h"
#include "playbook.h"
#include "sql.h"
#include "version.h"

struct spine_version {
  char hash[65];
  char *name; /* the playbook's name (its `name` field, else the file's) */
  char *key;  /* what it was asked for by ("contract_activation", "x/y.lua"); NULL if by hash */
  char *path;
  char *source;
  size_t len;
  int module;  /* registry ref to the compiled module table */
  int stored;  /* known to be in spine.playbook_versions */
  int loading; /* its source is being read from the database */
  spine_op op; /* the load */
  spine_engine *eng;
  spine_wf *waiters; /* claimed workflows waiting for the load */
  spine_version *next;
};

static spine_version *find_version(spine_engine *eng, const char *key, const char *hash) {
  for (spine_version *v = eng->versions; v; v = v->next)
    if ((key && v->key && !strcmp(v->key, key)) || (hash && !strcmp(v->hash, hash))) return v;
  return NULL;
}

spine_version *spine_version_compile(spine_engine *eng, const char *key, const char *path,
                                     const char *source, size_t len, const char *hash,
                                     spine_err *e) {
  lua_State *L = eng->L;
  int rc = spine_playbook_compile(L, source, len, path, eng->o.instructions, e);
  if (rc) return NULL;
  spine_version *v = calloc(1, sizeof *v);
  if (!v) {
    lua_pop(L, 1);
    spine_err_set(e, SPINE_ENOMEM, path, NULL, "out of memory");
    return NULL;
  }
  lua_getfield(L, -1, "name");
  const char *name = lua_tostring(L, -1);
  v->name = strdup(name ? name : key ? key : path);
  lua_pop(L, 1);
  v->module = luaL_ref(L, LUA_REGISTRYINDEX);
  snprintf(v->hash, sizeof v->hash, "%s", hash);
  v->key = key ? strdup(key) : NULL;
  v->path = strdup(path);
  v->source = malloc(len + 1);
  memcpy(v->source, source, len);
  v->source[len] = '\0';
  v->len = len;
  v->eng = eng;
  spine_op_init(&v->op);
  v->next = eng->versions;
  eng->versions = v;
  return v;
}

spine_version *spine_version_get(spine_engine *eng, const char *name_or_path, spine_err *e) {
  spine_version *v = find_version(eng, name_or_path, NULL);
  if (v) return v;
  spine_playbook_src src;
  if (spine_playbook_read(name_or_path, eng->o.playbooks, &src, e)) return NULL;
  v = find_version(eng, NULL, src.hash);
  if (v && !v->key) v->key = strdup(name_or_path);
  if (!v) v = spine_version_compile(eng, name_or_path, src.path, src.source, src.len, src.hash, e);
  spine_playbook_src_free(&src);
  return v;
}

const char *spine_version_hash(const spine_version *v) {
  return v->hash;
}
const char *spine_version_name(const spine_version *v) {
  return v->name;
}
const char *spine_version_path(const spine_version *v) {
  return v->path;
}
const char *spine_version_source(const spine_version *v, size_t *len) {
  if (len) *len = v->len;
  return v->source;
}

static void version_loaded(spine_op *op) {
  spine_version *v = op->data;
  spine_engine *eng = v->eng;
  v->loading = 0;
  PGresult *r = spine_op_result(op, 0);
  spine_err e;
  spine_err_clear(&e);
  int ok = 0;
  if (!op->status && r && PQntuples(r) == 1) {
    const char *path = PQgetvalue(r, 0, 1);
    const char *src = PQgetvalue(r, 0, 2);
    size_t len = (size_t)PQgetlength(r, 0, 2);
    lua_State *L = eng->L;
    if (spine_playbook_compile(L, src, len, path, eng->o.instructions, &e) == 0) {
      lua_getfield(L, -1, "name");
      const char *name = lua_tostring(L, -1);
      free(v->name);
      v->name = strdup(name ? name : PQgetvalue(r, 0, 0));
      lua_pop(L, 1);
      v->module = luaL_ref(L, LUA_REGISTRYINDEX);
      free(v->path);
      v->path = strdup(path);
      v->source = malloc(len + 1);
      memcpy(v->source, src, len);
      v->source[len] = '\0';
      v->len = len;
      v->stored = 1;
      ok = 1;
    }
  }
  spine_wf *w = v->waiters;
  v->waiters = NULL;
  while (w) {
    spine_wf *next = w->next_free;
    w->next_free = NULL;
    if (ok) {
      spine_wf_start_pending(w);
    } else {
      spine_log_error("scheduler", "cannot load the playbook version of a workflow", "workflow",
                      w->id, "version", v->hash, "error", e.msg, NULL);
      spine_wf_give_up(w, "its playbook version cannot be loaded");
    }
    w = next;
  }
}

spine_version *spine_version_of_hash(spine_engine *eng, const char *hash, const char *name) {
  spine_version *v = find_version(eng, NULL, hash);
  if (v) return v;
  v = calloc(1, sizeof *v);
  if (!v) abort();
  snprintf(v->hash, sizeof v->hash, "%s", hash);
  v->name = strdup(name);
  v->path = strdup("");
  v->module = LUA_NOREF;
  v->eng = eng;
  spine_op_init(&v->op);
  v->next = eng->versions;
  eng->versions = v;
  return v;
}

void spine_version_wait(spine_version *v, spine_wf *wf) {
  wf->next_free = v->waiters;
  v->waiters = wf;
  if (v->loading) return;
  v->loading = 1;
  spine_op_reset(&v->op);
  spine_op_stmt(&v->op, SPINE_SQL_VERSION_LOAD, 1);
  spine_op_param(&v->op, v->hash);
  v->op.cb = version_loaded;
  v->op.data = v;
  spine_store_submit(v->eng->store, &v->op);
}

int spine_version_module(const spine_version *v) {
  return v->module;
}

int spine_version_stored(const spine_version *v) {
  return v->stored;
}

void spine_version_set_stored(spine_version *v) {
  v->stored = 1;
}

void spine_version_forget_waiters(spine_engine *eng) {
  for (spine_version *v = eng->versions; v; v = v->next) {
    v->waiters = NULL; /* each is in the registry too: freed with it */
    v->loading = 0;
  }
}

void spine_version_free_all(spine_engine *eng) {
  for (spine_version *v = eng->versions, *next; v; v = next) {
    next = v->next;
    spine_op_free(&v->op);
    free(v->name);
    free(v->key);
    free(v->path);
    free(v->source);
    free(v);
  }
  eng->versions = NULL;
}
