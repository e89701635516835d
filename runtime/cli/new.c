/* `spine new playbook|adapter NAME`: scaffolds a playbook (its manifest, a busted spec that runs
 * it) or a provider adapter (a spec against `spine simulate`) from templates/, compiled into the
 * binary (spine_cli__templates): an installed spine needs nothing beside it. Never overwrites:
 * one existing file refuses the whole scaffold before anything is written. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "log.h"

#define MAX_NAME  63
#define MAX_FILES 3

static const char *const spec[] = {"dir=", "json", NULL};
static const char usage[] =
    "usage: spine new playbook|adapter NAME [--dir DIR] [--json]\n"
    "  playbook  writes playbooks/NAME.lua, a commented skeleton that runs as it is\n"
    "            (spine run playbooks/NAME.lua --clock virtual), its manifest\n"
    "            manifests/NAME.json and tests/spec/playbooks/NAME_spec.lua, a busted spec\n"
    "            that runs it\n"
    "  adapter   writes providers/NAME.lua, a provider adapter (an API operation and a\n"
    "            webhook), and tests/spec/providers/NAME_spec.lua, a busted spec that runs\n"
    "            it against `spine simulate`\n"
    "  NAME is [a-z][a-z0-9_]*, at most 63 characters. The files go under DIR (default: the\n"
    "  current directory), folders are made as needed. When NAME is not valid or one of the\n"
    "  files exists, nothing is written (exit 2). --json prints {\"created\": [paths]}.\n";

typedef struct scaffold {
  const char *kind;
  const char *templates[MAX_FILES + 1]; /* NULL-terminated */
  const char *paths[MAX_FILES + 1];     /* where each goes */
  const char *next;                     /* what to do next, for people */
} scaffold;

static const scaffold scaffolds[] = {
    {"playbook",
     {"playbook.lua", "playbook.json", "playbook_spec.lua", NULL},
     {"playbooks/__NAME__.lua", "manifests/__NAME__.json", "tests/spec/playbooks/__NAME___spec.lua",
      NULL},
     "  spine run playbooks/__NAME__.lua --clock virtual\n"
     "  busted tests/spec/playbooks/__NAME___spec.lua\n"},
    {"adapter",
     {"adapter.lua", "adapter_spec.lua", NULL},
     {"providers/__NAME__.lua", "tests/spec/providers/__NAME___spec.lua", NULL},
     "  busted tests/spec/providers/__NAME___spec.lua\n"
     "  and give it its settings in providers/providers.json: \"__NAME__\": {\"base_url\": ...}\n"},
};

static int good_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > MAX_NAME || s[0] < 'a' || s[0] > 'z') return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) return 0;
  return 1;
}

static const char *template_text(const char *name) {
  for (int i = 0; spine_cli__templates[i].name; i++)
    if (!strcmp(spine_cli__templates[i].name, name)) return spine_cli__templates[i].text;
  return NULL;
}

/* `text` (a template, a path) with every __NAME__ replaced by `name`. */
static void expand(spine_buf *out, const char *text, const char *name) {
  static const char mark[] = "__NAME__";
  for (const char *p = text;;) {
    const char *at = strstr(p, mark);
    if (!at) {
      spine_buf_puts(out, p);
      return;
    }
    spine_buf_append(out, p, (size_t)(at - p));
    spine_buf_puts(out, name);
    p = at + sizeof mark - 1;
  }
}

/* Makes the folders above `path` (as mkdir -p). 0 or -errno. */
static int make_parents(const char *path) {
  char dir[1024];
  size_t len = strlen(path);
  if (len >= sizeof dir) return -ENAMETOOLONG;
  memcpy(dir, path, len + 1);
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(dir, 0777) && errno != EEXIST) return -errno;
    *p = '/';
  }
  return 0;
}

/* Writes `text` to a new file `path` (never an existing one). 0 or -errno. */
static int write_new(const char *path, const spine_buf *text) {
  int rc = make_parents(path);
  if (rc) return rc;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) return -errno;
  size_t done = 0;
  while (done < text->len) {
    ssize_t n = write(fd, text->data + done, text->len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = -errno;
      break;
    }
    done += (size_t)n;
  }
  if (close(fd) && !rc) rc = -errno;
  return rc;
}

/* A refusal: exit 2, the error as JSON with --json, else on stderr. */
static int refuse(int json, int code, const char *why, const char *fmt, ...) SPINE_PRINTF(4, 5);

static int refuse(int json, int code, const char *why, const char *fmt, ...) {
  spine_err e;
  spine_err_clear(&e);
  e.code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e.msg, sizeof e.msg, fmt, ap);
  va_end(ap);
  if (json)
    spine_cli__fail(1, &e, why);
  else
    fprintf(stderr, "spine new: %s\n", e.msg);
  return SPINE_EXIT_USAGE;
}

int spine_cli_new(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 2, 2)) return cmd.exit_code;
  int json = cmd.json, rc = 0;
  const char *dir = spine_cli__get(&cmd, "dir");
  const char *kind = cmd.a.pos[0], *name = cmd.a.pos[1];
  const scaffold *sc = NULL;
  for (size_t i = 0; i < sizeof scaffolds / sizeof scaffolds[0]; i++)
    if (!strcmp(kind, scaffolds[i].kind)) sc = &scaffolds[i];
  if (!sc) {
    fprintf(stderr, "spine new: \"%s\" is not something to scaffold (playbook or adapter)\n\n%s",
            kind, usage);
    return SPINE_EXIT_USAGE;
  }
  if (!good_name(name))
    return refuse(json, SPINE_EINVAL, "invalid_name",
                  "\"%.64s\" is not a valid %s name (expected [a-z][a-z0-9_]*, at most %d "
                  "characters)",
                  name, kind, MAX_NAME);
  if (dir && !*dir) dir = NULL;

  char paths[MAX_FILES][1024];
  int n = 0;
  for (; sc->paths[n]; n++) {
    spine_buf rel = SPINE_BUF_INIT;
    expand(&rel, sc->paths[n], name);
    int len = snprintf(paths[n], sizeof paths[n], "%s%s%s", dir ? dir : "",
                       dir && dir[strlen(dir) - 1] != '/' ? "/" : "", spine_buf_str(&rel));
    spine_buf_free(&rel);
    if (len < 0 || (size_t)len >= sizeof paths[n])
      return refuse(json, SPINE_EINVAL, "invalid_argument", "--dir: path too long");
    struct stat st;
    if (lstat(paths[n], &st) == 0)
      return refuse(json, SPINE_ECONFLICT, "file_exists",
                    "%s already exists (nothing was written; pick another name or remove it)",
                    paths[n]);
  }

  spine_buf text = SPINE_BUF_INIT;
  int written = 0;
  for (; written < n; written++) {
    const char *t = template_text(sc->templates[written]);
    if (!t) abort(); /* the build embeds every file of templates/ */
    spine_buf_reset(&text);
    expand(&text, t, name);
    rc = write_new(paths[written], &text);
    if (rc) break;
  }
  spine_buf_free(&text);
  if (rc) { /* a file that appeared meanwhile, a full disk: undo what was written */
    for (int i = 0; i < written; i++)
      unlink(paths[i]);
    if (rc == -EEXIST)
      return refuse(json, SPINE_ECONFLICT, "file_exists",
                    "%s already exists (nothing was written; pick another name or remove it)",
                    paths[written]);
    spine_err e;
    spine_err_set(&e, SPINE_EIO, paths[written], NULL, "cannot write: %s", strerror(-rc));
    spine_cli__fail(json, &e, NULL);
    return SPINE_EXIT_REJECTED;
  }

  if (json) {
    spine_buf out = SPINE_BUF_INIT;
    spine_buf_printf(&out, "{\"kind\":\"%s\",\"name\":\"%s\",\"dir\":", sc->kind, name);
    spine_log_json_string(&out, dir ? dir : ".", strlen(dir ? dir : "."));
    spine_buf_puts(&out, ",\"created\":[");
    for (int i = 0; i < n; i++) {
      if (i) spine_buf_putc(&out, ',');
      spine_log_json_string(&out, paths[i], strlen(paths[i]));
    }
    spine_buf_puts(&out, "]}\n");
    fputs(spine_buf_str(&out), stdout);
    spine_buf_free(&out);
  } else {
    for (int i = 0; i < n; i++)
      printf("created %s\n", paths[i]);
    if (dir)
      printf("next, in %s:\n", dir);
    else
      printf("next:\n");
    spine_buf next = SPINE_BUF_INIT;
    expand(&next, sc->next, name);
    fputs(spine_buf_str(&next), stdout);
    spine_buf_free(&next);
  }
  return SPINE_EXIT_OK;
}
