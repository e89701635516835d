/* UUIDs: the layout of both versions (RFC 9562), and that workflow ids (version 7) made in a
 * later millisecond sort after the earlier ones, as text, which is what keeps the primary keys'
 * inserts at their right edge; ids within one millisecond differ in their random bits. */
#include <time.h>

#include "test.h"
#include "uuid.h"

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void check_layout(const char *id, char version) {
  ASSERT_EQ((int)strlen(id), 36);
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23)
      ASSERT_EQ(id[i], '-');
    else
      ASSERT(strchr("0123456789abcdef", id[i]) != NULL);
  }
  ASSERT_EQ(id[14], version);
  ASSERT(strchr("89ab", id[19]) != NULL); /* variant 10 */
}

TEST_IMPL(uuid_versions_and_order) {
  char a[37], b[37], r[37];
  spine_uuid(r);
  check_layout(r, '4');

  int64_t before = wall_ms();
  spine_uuid_ordered(a);
  int64_t after = wall_ms();
  check_layout(a, '7');
  char hex[13];
  memcpy(hex, a, 8);
  memcpy(hex + 8, a + 9, 4);
  hex[12] = 0;
  int64_t ms = strtoll(hex, NULL, 16);
  ASSERT_GE(ms, before);
  ASSERT_LE(ms, after); /* its first 48 bits are the wall clock */

  /* the same millisecond: different ids; a later one: a greater id */
  spine_uuid_ordered(b);
  ASSERT(strcmp(a, b) != 0);
  while (wall_ms() <= after)
    spine_uuid_ordered(b); /* until the clock has moved on */
  spine_uuid_ordered(b);
  ASSERT(strcmp(a, b) < 0);
  return 0;
}
