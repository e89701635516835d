/* What every fuzz harness defines (libFuzzer's entry points, or driver.c's in the ordinary
 * builds) and its one check. A harness keeps no state that grows from one input to the next and
 * frees what each input made, so libFuzzer's leak detection and the replay under ASan agree. */
#ifndef SPINE_FUZZ_H
#define SPINE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Once, before the first input: what every input shares (a Lua state, a server). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
/* One input; returns 0. A failed check aborts, which libFuzzer reports as a crash. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property of the parser that must hold for every input. */
#define FUZZ_CHECK(expr)                                                                           \
  do {                                                                                             \
    if (!(expr)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr);                     \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

#endif
