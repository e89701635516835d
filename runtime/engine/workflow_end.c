/* How a workflow leaves memory (workflow_internal.h): its end committed (completed, failed,
 * compensated, cancelled, stuck), parked for an operator, lost to another worker's claim, or
 * given up to be replayed from what the database holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "log.h"
#include "sql.h"

static void ended(spine_op *op) {
  spine_wf *wf = op->data;
  spine_engine *eng = wf->eng;
  if (op->status)
    spine_log_error("scheduler", "cannot record the end of a workflow", "workflow", wf->id, "error",
                    spine_op_error(op)->msg, NULL);
  else
    eng->counts.ended[wf->status]++;
  if (eng->end_cb) eng->end_cb(eng->end_data, wf, wf->end_result, wf->end_error);
  spine_wf_free(wf);
}

void spine_wf_end(spine_wf *wf, spine_wf_status status, const char *result, const char *error) {
  spine_engine *eng = wf->eng;
  if (eng->dry) {
    eng->report->ended = 1;
    eng->report->status = status;
    snprintf(eng->report->error, sizeof eng->report->error, "%s", error ? error : "");
    spine_wf_move(wf, SPINE_WF_PHASE_DROPPED);
    return;
  }
  spine_wf_timer_cancel(wf);
  wf->status = status;
  spine_wf_move(wf, SPINE_WF_PHASE_ENDING);
  spine_op *op = spine_wf_op_begin(wf);
  spine_op_stmt(op, SPINE_SQL_WF_END, 0);
  spine_op_param(op, wf->id);
  spine_op_param(op, spine_wf_status_name(status));
  spine_op_param(op, result);
  spine_op_param(op, error);
  spine_op_param_int(op, eng->worker);
  spine_op_param_int(op, spine_wf_now(wf));
  if (wf->parent_id) {
    spine_buf payload = SPINE_BUF_INIT;
    spine_buf_printf(&payload, "{\"status\":\"%s\",\"result\":%s,\"error\":%s,\"id\":",
                     spine_wf_status_name(status), result ? result : "null",
                     error ? error : "null");
    spine_log_json_string(&payload, wf->id, strlen(wf->id));
    spine_buf_putc(&payload, '}');
    char name[64];
    snprintf(name, sizeof name, "spine.child:%d", wf->parent_seq);
    spine_op_stmt(op, SPINE_SQL_SIGNAL_SEND, 0);
    spine_op_param(op, wf->parent_id);
    spine_op_param(op, name);
    spine_op_param(op, spine_buf_str(&payload));
    spine_buf_free(&payload);
  }
  if (!eng->o.quiet)
    spine_log(status == SPINE_WF_COMPLETED ? SPINE_LOG_INFO : SPINE_LOG_WARN, "workflow",
              "workflow ended", "workflow", wf->id, "trace_id", wf->trace_id, "status",
              spine_wf_status_name(status), "error", error, NULL);
  /* Reported once committed: kept until then. */
  wf->end_result = result ? strdup(result) : NULL;
  wf->end_error = error ? strdup(error) : NULL;
  spine_wf_submit(wf, ended);
}

void spine_wf_stuck(spine_wf *wf, const char *code, const char *message) {
  if (spine_wf_stopped(wf)) return;
  wf->limits.instructions_left = 0; /* a pcall in the playbook cannot go on for long */
  spine_buf err = SPINE_BUF_INIT;
  spine_buf_puts(&err, "{\"kind\":\"stuck\",\"code\":");
  spine_log_json_string(&err, code, strlen(code));
  spine_buf_puts(&err, ",\"message\":");
  spine_log_json_string(&err, message, strlen(message));
  spine_buf_printf(&err, ",\"step\":%d}", wf->last_seq);
  spine_wf_end(wf, SPINE_WF_STUCK, NULL, spine_buf_str(&err));
  spine_buf_free(&err);
}

void spine_wf_parked(spine_wf *wf, spine_wf_status status) {
  spine_engine *eng = wf->eng;
  spine_wf_timer_cancel(wf);
  wf->status = status;
  eng->counts.ended[status]++;
  if (eng->end_cb) eng->end_cb(eng->end_data, wf, NULL, NULL);
  spine_wf_free(wf);
}

static void lost_done(spine_op *op) {
  spine_wf_free(op->data);
}

/* Frees `wf` on the next batch boundary: the coroutine may be on the C stack right now. */
static void drop_later(spine_wf *wf) {
  spine_wf_timer_cancel(wf);
  if (wf->op_inflight || wf->eng->dry) return; /* as in spine_wf_give_up */
  spine_op_reset(&wf->op);
  spine_op_stmt(&wf->op, SPINE_SQL_NOTIFY_WORK, 0);
  spine_wf_submit(wf, lost_done);
}

void spine_wf_lost(spine_wf *wf, const char *why) {
  if (spine_wf_stopped(wf)) return;
  spine_wf_move(wf, SPINE_WF_PHASE_DROPPED);
  spine_log_warn("scheduler", "workflow's claim is no longer this worker's; dropped here",
                 "workflow", wf->id, "why", why, NULL);
  drop_later(wf);
}

static void given_up(spine_op *op) {
  spine_wf *wf = op->data;
  spine_engine *eng = wf->eng;
  if (op->status && op->status != SPINE_ELOST)
    spine_log_error("scheduler", "cannot release a workflow", "workflow", wf->id, "error",
                    spine_op_error(op)->msg, NULL);
  spine_wf_free(wf);
  spine_sched_claim(eng); /* it is free again (or someone else's): look for work */
}

void spine_wf_give_up(spine_wf *wf, const char *why) {
  if (spine_wf_stopped(wf)) return;
  spine_wf_move(wf, SPINE_WF_PHASE_RELEASING);
  spine_log_warn("scheduler", "workflow released to run again from its recorded steps", "workflow",
                 wf->id, "why", why, NULL);
  /* Called from an op's callback or a resume: no op is in flight (ctx refuses a step while one
   * is, spine_ctx__check_step). */
  if (wf->op_inflight || wf->eng->dry) {
    spine_wf_timer_cancel(wf);
    return;
  }
  spine_wf_release(wf, 1, given_up);
}

void spine_wf_release(spine_wf *wf, int fault, spine_op_cb cb) {
  spine_wf_timer_cancel(wf);
  spine_op *op = &wf->op;
  spine_op_reset(op);
  spine_op_stmt(op, SPINE_SQL_WF_RELEASE, 0);
  spine_op_param(op, wf->id);
  spine_op_param_int(op, wf->eng->worker);
  spine_op_param_int(op, wf->epoch);
  spine_op_param_int(op, fault);
  spine_wf_submit(wf, cb);
}

void spine_wf_checkpoint_failed(spine_wf *wf, spine_op *op) {
  if (op->status == SPINE_ELOST)
    spine_wf_lost(wf, spine_op_error(op)->msg);
  else if (op->status == SPINE_ECONFLICT && !strcmp(op->sqlstate, "23505"))
    /* The fence passed, so the claim is ours: the step is in the database but not in the log
     * this worker replayed. Not a takeover: run it again from what the database holds. */
    spine_wf_give_up(wf, spine_op_error(op)->msg);
  else
    spine_wf_stuck(wf, "checkpoint_failed", spine_op_error(op)->msg);
}
