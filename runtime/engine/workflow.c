/* The life of a workflow in memory (workflow.h): its phases and the one function that moves it
 * between them, refusing moves the engine never makes. Owns no memory; the scheduler creates and
 * frees workflows. */
#include "workflow_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"

#define BIT(p) (1u << SPINE_WF_PHASE_##p)
#define FINAL  (BIT(ENDING) | BIT(RELEASING) | BIT(DROPPED))

/* allowed[from]: the phases a workflow may move to from `from`. */
static const unsigned allowed[] = {
    [SPINE_WF_PHASE_LOADING] = BIT(RUNNING) | BIT(COMMITTING) | FINAL,
    [SPINE_WF_PHASE_RUNNING] = BIT(COMMITTING) | BIT(TIMER) | BIT(SIGNAL) | FINAL,
    [SPINE_WF_PHASE_COMMITTING] =
        BIT(RUNNING) | BIT(COMMITTING) | BIT(TIMER) | BIT(SIGNAL) | BIT(PROVIDER) | FINAL,
    [SPINE_WF_PHASE_TIMER] = BIT(RUNNING) | BIT(COMMITTING) | FINAL,
    [SPINE_WF_PHASE_SIGNAL] = BIT(RUNNING) | BIT(COMMITTING) | FINAL,
    [SPINE_WF_PHASE_PROVIDER] = BIT(COMMITTING) | FINAL,
    /* Final: the last op (the end, the release, the drop) commits, then the workflow is freed.
     * A replay without a database ends in DROPPED and may be stopped again there. */
    [SPINE_WF_PHASE_ENDING] = 0,
    [SPINE_WF_PHASE_RELEASING] = 0,
    [SPINE_WF_PHASE_DROPPED] = BIT(DROPPED),
};

const char *spine_wf_phase_name(spine_wf_phase p) {
  switch (p) {
    case SPINE_WF_PHASE_LOADING:
      return "loading";
    case SPINE_WF_PHASE_RUNNING:
      return "running";
    case SPINE_WF_PHASE_COMMITTING:
      return "committing";
    case SPINE_WF_PHASE_TIMER:
      return "timer";
    case SPINE_WF_PHASE_SIGNAL:
      return "signal";
    case SPINE_WF_PHASE_PROVIDER:
      return "provider";
    case SPINE_WF_PHASE_ENDING:
      return "ending";
    case SPINE_WF_PHASE_RELEASING:
      return "releasing";
    case SPINE_WF_PHASE_DROPPED:
      return "dropped";
  }
  abort();
}

void spine_wf_move(spine_wf *wf, spine_wf_phase to) {
  if (!(allowed[wf->phase] & (1u << to))) {
    spine_log_error("workflow", "engine fault: impossible move of a workflow", "workflow", wf->id,
                    "from", spine_wf_phase_name(wf->phase), "to", spine_wf_phase_name(to), NULL);
    abort();
  }
  wf->phase = to;
}

const char *spine_wf_status_name(spine_wf_status s) {
  static const char *const names[] = {"pending",     "running",   "waiting", "completed", "failed",
                                      "compensated", "cancelled", "stuck",   "paused"};
  return names[s];
}

const char *spine_wf_id(const spine_wf *wf) {
  return wf->id;
}

spine_wf_status spine_wf_status_of(const spine_wf *wf) {
  return wf->status;
}

const char *spine_wf_parent(const spine_wf *wf) {
  return wf->parent_id;
}

int spine_wf_stopped(const spine_wf *wf) {
  return ((1u << wf->phase) & FINAL) != 0;
}
