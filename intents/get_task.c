/* GetTask: the C side of lifecycle.get_task() (intents/sql/1004_get_task.sql), which holds the
 * business logic. Checks the arguments against ARGS, then calls it in the step's transaction. */
#include "intent_args.h"

#define NAME "GetTask"
#define ARGS "task_id: id"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("get_task");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_get_task = {
    .name = NAME,
    .description =
        "Reads a human task: kind, subject, data, status and, once resolved, its outcome, resolution and resolver (resolved_by, the actor of ResolveTask), and the workflow that opened it (workflow_id, null when an operator did). Returns the task record.",
    .args = ARGS,
    .result = "customer_id: id, task_id: id, kind: id, subject: id, status: open|resolved, "
              "data: object, due: time?, outcome: string?, resolution: object?, "
              "resolved_by: string?, created_at: time, resolved_at: time?, workflow_id: id?",
    .prepare = prepare,
    .apply = apply,
};
