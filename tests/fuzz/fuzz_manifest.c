/* Fuzzes the routing manifest parser (manifest.c), what `spine manifests check` and serve read
 * from the manifests folder: any bytes either make a manifest whose invariants hold (weights in
 * buckets summing to 100 %, unique variant names, overrides naming variants, a subject among
 * the inputs) or an error naming file:line, with nothing half-made. The playbook checks of
 * manifest_set.c read files and compile Lua: not fuzzed here. */
#include <string.h>

#include "manifest.h"

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  return 0;
}

static void check_manifest(const spine_manifest *m, const uint8_t *data, size_t size) {
  FUZZ_CHECK(m->len == size && !memcmp(m->text, data, size) && m->text[size] == '\0');
  FUZZ_CHECK(strlen(m->hash) == 64);
  FUZZ_CHECK(m->process && m->process[0] && m->subject);
  FUZZ_CHECK(m->nvariants > 0);
  int buckets = 0;
  for (int i = 0; i < m->nvariants; i++) {
    const spine_manifest_variant *v = &m->variants[i];
    FUZZ_CHECK(v->name && v->playbook && v->name[0] && v->playbook[0]);
    FUZZ_CHECK(v->weight > 0 && v->weight <= 100 && v->buckets >= 1);
    FUZZ_CHECK(spine_manifest_variant_named(m, v->name) == v); /* names are unique */
    buckets += v->buckets;
  }
  FUZZ_CHECK(buckets == SPINE_MANIFEST_BUCKETS);
  for (int i = 0; i < m->noverrides; i++)
    FUZZ_CHECK(spine_manifest_variant_named(m, m->overrides[i].variant) != NULL);
  for (int i = 0; i < m->ninput; i++)
    FUZZ_CHECK(spine_manifest_known_type(m->input[i].type));
  const char *st = spine_manifest_input_type(m, m->subject);
  FUZZ_CHECK(st && (!strncmp(st, "string", 6) || !strncmp(st, "integer", 7)));
  for (int i = 0; i < m->nevents; i++)
    for (int k = 0; k < i; k++)
      FUZZ_CHECK(strcmp(m->on_events[i], m->on_events[k]) != 0);
  if (m->started && m->ends) FUZZ_CHECK(strcmp(m->started, m->ends) <= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  spine_manifest *m = (spine_manifest *)1;
  spine_err e;
  spine_err_clear(&e);
  int rc = spine_manifest_parse("manifests/fuzz.json", (const char *)data, size, &m, &e);
  if (rc) {
    FUZZ_CHECK(rc == SPINE_EINVAL && e.code == SPINE_EINVAL && m == NULL);
    FUZZ_CHECK(!strncmp(e.where, "manifests/fuzz.json:", 20) && e.msg[0]);
    return 0;
  }
  FUZZ_CHECK(m != NULL);
  check_manifest(m, data, size);
  spine_manifest_free(m);
  return 0;
}
