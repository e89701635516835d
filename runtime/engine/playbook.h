/* Playbook files: finding one by name or path, reading and hashing its source, compiling it
 * in the sandbox, and checking a case's input against its `input` declaration.
 * Reads files synchronously: call it at start, from the CLI, or once per playbook (cached). */
#ifndef SPINE_PLAYBOOK_H
#define SPINE_PLAYBOOK_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct spine_playbook_src {
  char *path;   /* as found: "playbooks/demo.lua" (owned) */
  char *source; /* owned, NUL-terminated */
  size_t len;
  char hash[65]; /* sha256 of the source */
} spine_playbook_src;

/* Whether `name_or_path` is a file path (has a '/' or ends in ".lua"), not a name. */
int spine_playbook_is_path(const char *name_or_path);
/* `name_or_path` is a file path (spine_playbook_is_path) or a name in `dir`. */
int spine_playbook_read(const char *name_or_path, const char *dir, spine_playbook_src *out,
                        spine_err *e);
void spine_playbook_src_free(spine_playbook_src *p);

/* Compiles `src` as `path` in the sandbox and checks the module it returns: a table with
 * `run` (a function) and, if present, `name` (a string), `calendar` (a holiday calendar's
 * name, calendar.h) and `input` (a table of field = type, types string number integer boolean
 * table date, optional with a trailing '?').
 * Pushes the module table, or returns SPINE_ESYNTAX/SPINE_ERUNTIME/SPINE_EINVAL/SPINE_ELIMIT
 * with e->where "path:line" where known. */
int spine_playbook_compile(lua_State *L, const char *src, size_t len, const char *path,
                           int64_t instructions, spine_err *e);

/* Checks the input table at `input` against the module's declaration at `module`. Unknown
 * fields pass (a later version may read them). e->field names the bad field. */
int spine_playbook_check_input(lua_State *L, int module, int input, const char *path, spine_err *e);

#endif
