/* CreateTask: the C side of lifecycle.create_task() (intents/sql/1005_task_workflow.sql), which
 * holds the business logic. Checks the arguments against ARGS, then calls it in the step's
 * transaction. */
#include "intent_args.h"

#define NAME "CreateTask"
#define ARGS "kind: id, subject: id, data: object?, due: time?, task_id: id?"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("create_task");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_create_task = {
    .name = NAME,
    .description =
        "Opens a human task about a contract or customer (the subject) for operators; a task opened by a workflow is answered to it (ResolveTask signals task.resolved). A caller-supplied task_id makes it idempotent. Returns {task_id, status}.",
    .args = ARGS,
    .result = "task_id: id, status: open",
    .prepare = prepare,
    .apply = apply,
};
