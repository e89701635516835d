/* ResolveTask: the C side of lifecycle.resolve_task() (intents/sql/1005_task_workflow.sql),
 * which holds the business logic. Checks the arguments against ARGS, then calls it in the step's
 * transaction. */
#include "intent_args.h"

#define NAME "ResolveTask"
#define ARGS "task_id: id, outcome: string, data: object?"

static int stmt;

static void prepare(void) {
  stmt = spine_intent_args_statement("resolve_task");
}

static int apply(spine_intent_call *c, spine_err *e) {
  return spine_intent_args_apply(c, NAME, ARGS, stmt, e);
}

const spine_intent spine_intent_resolve_task = {
    .name = NAME,
    .description =
        "Resolves an open human task with an outcome (the actor is recorded as resolver) and signals task.resolved {task_id, kind, subject, outcome, data, resolved_by} to the workflow that opened it, if one did and is not the one resolving it. Returns {task_id, status, outcome}.",
    .args = ARGS,
    .result = "task_id: id, status: resolved, outcome: string",
    .prepare = prepare,
    .apply = apply,
};
