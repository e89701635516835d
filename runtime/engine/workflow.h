/* A workflow, as the engine's users see it: an opaque handle (its struct is the engine's own,
 * workflow_internal.h), its status, its id. */
#ifndef SPINE_WORKFLOW_H
#define SPINE_WORKFLOW_H

typedef struct spine_engine spine_engine;
typedef struct spine_version spine_version;
typedef struct spine_wf spine_wf;

typedef enum {
  SPINE_WF_PENDING,
  SPINE_WF_RUNNING,
  SPINE_WF_WAITING,
  SPINE_WF_COMPLETED,
  SPINE_WF_FAILED,
  SPINE_WF_COMPENSATED,
  SPINE_WF_CANCELLED,
  SPINE_WF_STUCK,
  SPINE_WF_PAUSED,
} spine_wf_status;

/* Text of a status ("waiting"). */
const char *spine_wf_status_name(spine_wf_status s);
/* Borrowed: valid while the workflow is (in an end callback: until it returns). */
const char *spine_wf_id(const spine_wf *wf);
/* Its status: how it ended, in an end callback. */
spine_wf_status spine_wf_status_of(const spine_wf *wf);
/* The id of the workflow that started it (ctx.child), or NULL. Borrowed, as spine_wf_id. */
const char *spine_wf_parent(const spine_wf *wf);

#endif
