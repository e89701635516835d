/* A folder of manifests as one set (manifest_set.h): read in file-name order, parsed, checked
 * for duplicate processes and against the playbooks they name. Owns the manifests it keeps. */
#include "manifest_set.h"

#include <dirent.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "playbook.h"
#include "sandbox.h"

#define MAX_FILE (1 << 20)

static void report(spine_manifest_set_report_fn fn, void *data, int warning, const spine_err *e) {
  if (fn) fn(data, warning, e);
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.json names of `dir`, sorted; NULL-terminated, caller frees each and the array. */
static char **list_json(const char *dir, int *n) {
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return NULL;
  char **names = NULL;
  int cap = 0;
  struct dirent *ent;
  while ((ent = readdir(d))) {
    size_t l = strlen(ent->d_name);
    if (l < 6 || strcmp(ent->d_name + l - 5, ".json") || ent->d_name[0] == '.') continue;
    if (*n + 1 >= cap) {
      cap = cap ? cap * 2 : 16;
      char **grown = realloc(names, (size_t)cap * sizeof *names);
      if (!grown) break;
      names = grown;
    }
    names[(*n)++] = strdup(ent->d_name);
  }
  closedir(d);
  if (names) qsort(names, (size_t)*n, sizeof *names, by_name);
  return names;
}

static int read_file(const char *path, char **out, size_t *len, spine_err *e) {
  FILE *f = fopen(path, "rb");
  if (!f) return spine_err_set(e, SPINE_EIO, path, NULL, "cannot read the file");
  char *buf = malloc(MAX_FILE + 1);
  size_t n = buf ? fread(buf, 1, MAX_FILE + 1, f) : 0;
  int err = ferror(f);
  fclose(f);
  if (!buf) return spine_err_set(e, SPINE_ENOMEM, path, NULL, "out of memory");
  if (err || n > MAX_FILE) {
    free(buf);
    return spine_err_set(e, SPINE_EIO, path, NULL, err ? "cannot read the file" : "over 1 MB");
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

/* Does the playbook's declared input fit what the manifest gives? Module at the top of L. */
static int check_declared_input(lua_State *L, const spine_manifest *m, int vi,
                                spine_manifest_set_report_fn fn, void *data) {
  const spine_manifest_variant *v = &m->variants[vi];
  char where[128], field[64];
  snprintf(where, sizeof where, "%s:%d", m->path, v->line);
  snprintf(field, sizeof field, "variants[%d].playbook", vi);
  int errors = 0;
  if (lua_getfield(L, -1, "input") != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    const char *name = lua_tostring(L, -2);
    size_t tl;
    const char *ty = lua_tolstring(L, -1, &tl);
    int optional = tl && ty[tl - 1] == '?';
    const char *given = spine_manifest_input_type(m, name);
    size_t gl = given ? strlen(given) : 0;
    int given_optional = gl && given[gl - 1] == '?';
    spine_err e;
    spine_err_clear(&e);
    if (!given && !optional)
      spine_err_set(&e, SPINE_EINVAL, where, field,
                    "playbook %s requires input %s (%.*s), which the manifest's input does not "
                    "declare",
                    v->playbook, name, (int)tl, ty);
    else if (given && (gl - (size_t)given_optional != tl - (size_t)optional ||
                       strncmp(given, ty, tl - (size_t)optional)))
      spine_err_set(&e, SPINE_EINVAL, where, field,
                    "playbook %s declares input %s as %.*s, the manifest as %s", v->playbook, name,
                    (int)tl, ty, given);
    else if (given && given_optional && !optional)
      spine_err_set(&e, SPINE_EINVAL, where, field,
                    "playbook %s requires input %s, which the manifest makes optional (%s)",
                    v->playbook, name, given);
    if (e.code) {
      report(fn, data, 0, &e);
      errors++;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return errors;
}

int spine_manifest_set_check_playbooks(const spine_manifest *m, const char *playbooks_dir,
                                       spine_manifest_set_report_fn fn, void *data) {
  int errors = 0;
  for (int i = 0; i < m->nvariants; i++) {
    const spine_manifest_variant *v = &m->variants[i];
    char where[128], field[64];
    snprintf(where, sizeof where, "%s:%d", m->path, v->line);
    snprintf(field, sizeof field, "variants[%d].playbook", i);
    spine_err e, pe;
    spine_err_clear(&e);
    spine_err_clear(&pe);
    spine_playbook_src src;
    if (spine_playbook_read(v->playbook, playbooks_dir, &src, &pe)) {
      spine_err_set(&e, SPINE_ENOTFOUND, where, field, "no playbook \"%s\" (%s)", v->playbook,
                    pe.msg);
      report(fn, data, 0, &e);
      errors++;
      continue;
    }
    lua_State *L = spine_sandbox_new_state(256 << 20);
    if (!L) {
      spine_playbook_src_free(&src);
      spine_err_set(&e, SPINE_ENOMEM, where, field, "out of memory");
      report(fn, data, 0, &e);
      return errors + 1;
    }
    if (spine_playbook_compile(L, src.source, src.len, src.path, 50000000, &pe)) {
      char msg[600];
      spine_err_set(&e, pe.code, where, field, "playbook %s does not compile: %s", src.path,
                    spine_err_format(&pe, msg, sizeof msg));
      report(fn, data, 0, &e);
      errors++;
    } else {
      errors += check_declared_input(L, m, i, fn, data);
    }
    lua_close(L);
    spine_playbook_src_free(&src);
  }
  return errors;
}

int spine_manifest_set_load(const char *dir, const char *playbooks_dir, spine_manifest_set *set,
                            spine_manifest_set_report_fn fn, void *data) {
  memset(set, 0, sizeof *set);
  int n = 0, errors = 0;
  char **names = list_json(dir, &n);
  if (n) set->items = calloc((size_t)n, sizeof *set->items);
  for (int i = 0; i < n; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    free(names[i]);
    spine_err e;
    spine_err_clear(&e);
    char *text = NULL;
    size_t len = 0;
    spine_manifest *m = NULL;
    if (!set->items || read_file(path, &text, &len, &e) ||
        spine_manifest_parse(path, text, len, &m, &e)) {
      if (!e.code) spine_err_set(&e, SPINE_ENOMEM, path, NULL, "out of memory");
      report(fn, data, 0, &e);
      errors++;
      free(text);
      continue;
    }
    free(text);
    const spine_manifest *dup = spine_manifest_set_find(set, m->process);
    if (dup) {
      char where[128];
      snprintf(where, sizeof where, "%s:%d", m->path, m->process_line);
      spine_err_set(&e, SPINE_ECONFLICT, where, "process",
                    "process \"%s\" already has a manifest: %s", m->process, dup->path);
      report(fn, data, 0, &e);
      errors++;
      spine_manifest_free(m);
      continue;
    }
    errors += spine_manifest_set_check_playbooks(m, playbooks_dir, fn, data);
    set->items[set->n++] = m;
  }
  free(names);
  return errors;
}

void spine_manifest_set_free(spine_manifest_set *set) {
  for (int i = 0; i < set->n; i++)
    spine_manifest_free(set->items[i]);
  free(set->items);
  memset(set, 0, sizeof *set);
}

const spine_manifest *spine_manifest_set_find(const spine_manifest_set *set, const char *process) {
  for (int i = 0; i < set->n; i++)
    if (!strcmp(set->items[i]->process, process)) return set->items[i];
  return NULL;
}
