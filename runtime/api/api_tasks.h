/* Human tasks for operators (issue 14): the open ones, one, claiming one and answering one
 * with an outcome and data checked against its kind's declared form. The tasks and their forms
 * are the domain's (lifecycle.tasks, lifecycle.task_kinds: intents/sql/1007_task_forms.sql);
 * this file calls its functions by name and answers through the ResolveTask intent, so the
 * workflow that opened the task is signalled. Blocking libpq: the CLI, or a worker thread. */
#ifndef SPINE_API_TASKS_H
#define SPINE_API_TASKS_H

#include <libpq-fe.h>

#include "buf.h"
#include "err.h"

/* Which open tasks: each NULL when not asked; assignee "" means unclaimed. Borrowed. */
typedef struct spine_api_tasks_filter {
  const char *kind, *subject, *assignee, *due_before, *cursor;
  int limit; /* 1 to 1000; 0: 100 */
} spine_api_tasks_filter;

/* Appends {items: [tasks, oldest first], next_cursor}. 0, SPINE_EINVAL (field due_before,
 * cursor, limit), or SPINE_EDB. */
int spine_api_tasks_list(PGconn *c, const spine_api_tasks_filter *f, spine_buf *out, spine_err *e);
/* Appends task `id` (its fields and its kind's `form`). 0, SPINE_ENOTFOUND, or SPINE_EDB. */
int spine_api_tasks_get(PGconn *c, const char *id, spine_buf *out, spine_err *e);
/* Claims open task `id` for `actor` (again by them: nothing new); appends the task. 0,
 * SPINE_ENOTFOUND, SPINE_ETRANSITION (resolved), SPINE_ECONFLICT (another's), or SPINE_EDB. */
int spine_api_tasks_claim(PGconn *c, const char *id, const char *actor, spine_buf *out,
                          spine_err *e);
/* Answers task `id` with `outcome` and `data` (a JSON object; NULL: {}) as `actor`, checked
 * against its form (field outcome or data.NAME), through ResolveTask under trace `trace_id`;
 * appends ResolveTask's result. The refusals of claim, SPINE_EINVAL, or SPINE_EDB. */
int spine_api_tasks_resolve(PGconn *c, const char *id, const char *outcome, const char *data,
                            const char *actor, const char *trace_id, spine_buf *out, spine_err *e);

#endif
