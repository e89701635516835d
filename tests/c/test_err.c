#include "err.h"
#include "test.h"

TEST_IMPL(err_format) {
  spine_err e;
  spine_err_clear(&e);
  ASSERT_EQ(spine_err_set(&e, SPINE_EINVAL, "manifests/a.json:7", "variants[1].weight",
                          "must be positive (got %d)", -3),
            SPINE_EINVAL);
  char out[512];
  ASSERT_STR_EQ(spine_err_format(&e, out, sizeof out),
                "manifests/a.json:7: variants[1].weight: must be positive (got -3)");
  ASSERT_STR_EQ(spine_err_kind(SPINE_ETRANSITION), "invalid_transition");
  ASSERT_STR_EQ(spine_err_kind(-1), "internal");
  return 0;
}
