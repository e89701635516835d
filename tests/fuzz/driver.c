/* Replays inputs through a fuzz harness without libFuzzer: `fuzz_<name>_replay FILE|DIR...`
 * runs LLVMFuzzerInitialize once, then LLVMFuzzerTestOneInput on each file (a directory: each
 * of its files, in name order). The ordinary builds' C tests run it on the seed corpus and the
 * regression inputs; a crash aborts (under ASan, with the report) after naming its file. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* The whole file, malloc'd to exactly its size, so ASan sees a read past the end. */
static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  if (!f) return NULL;
  if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
    fclose(f);
    return NULL;
  }
  size_t n = (size_t)st.st_size;
  unsigned char *buf = malloc(n ? n : 1);
  if (buf && fread(buf, 1, n, f) != n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = n;
  return buf;
}

static int run_file(const char *path) {
  size_t len = 0;
  unsigned char *data = slurp(path, &len);
  if (!data) {
    fprintf(stderr, "fuzz driver: cannot read %s\n", path);
    return 1;
  }
  fprintf(stderr, "fuzz driver: %s (%zu bytes)\n", path, len);
  LLVMFuzzerTestOneInput(data, len);
  free(data);
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of `dir`, in name order. */
static int run_dir(const char *dir, int *count) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "fuzz driver: cannot open %s\n", dir);
    return 1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  struct dirent *ent;
  while ((ent = readdir(d))) {
    if (ent->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **grown = realloc(names, cap * sizeof *names);
      if (!grown) {
        rc = 1;
        break;
      }
      names = grown;
    }
    if (!(names[n] = strdup(ent->d_name))) {
      rc = 1;
      break;
    }
    n++;
  }
  closedir(d);
  if (names) qsort(names, n, sizeof *names, by_name);
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    struct stat st;
    if (!rc && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
      rc = run_file(path);
      (*count)++;
    }
    free(names[i]);
  }
  free(names);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
    return 2;
  }
  LLVMFuzzerInitialize(&argc, &argv);
  int count = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "fuzz driver: no such file %s\n", argv[i]);
      return 1;
    }
    int rc = S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) : (count++, run_file(argv[i]));
    if (rc) return 1;
  }
  fprintf(stderr, "fuzz driver: %d inputs, no failure\n", count);
  return 0;
}
