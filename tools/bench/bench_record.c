/* BenchRecord (bench_record.h): writes one row of spine.bench_effects (bench.sql). Used by
 * spine-bench for intent_steps_per_s and by the engine's exactly-once tests; it has no business
 * meaning, and is no part of the product's catalog. */
#include "bench_record.h"

#include "intents.h"

static int insert_row;

static void prepare(void) {
  /* The set form inserts the batch's rows in one statement; the result is the one the single
   * form returns (its row's n). */
  insert_row = spine_intents_result_set_statement(
      "INSERT INTO spine.bench_effects (workflow_id, seq, n) VALUES ($1, $2, $3)"
      " RETURNING jsonb_build_object('n', n)",
      "e AS (INSERT INTO spine.bench_effects (workflow_id, seq, n) SELECT v.p1, v.p2::int,"
      " v.p3::int FROM v), r AS (SELECT v.ord, jsonb_build_object('n', v.p3::int) AS result"
      " FROM v)");
}

static int apply(spine_intent_call *c, spine_err *e) {
  long long n = 0;
  int rc = spine_intent_arg_int(c, "n", 0, &n, e);
  if (rc < 0) return rc;
  spine_op_stmt(c->op, insert_row, 0);
  spine_op_param(c->op, c->workflow_id ? c->workflow_id : c->actor);
  spine_op_param_int(c->op, c->seq);
  spine_op_param_int(c->op, n);
  return 0;
}

static const spine_intent bench_record = {
    .name = "BenchRecord",
    .description = "Records one row in spine.bench_effects (benchmarks and engine tests).",
    .args = "n: integer?",
    .result = "n: integer",
    .prepare = prepare,
    .apply = apply,
};

void spine_bench_record_register(void) {
  spine_intents_register(&bench_record);
}
