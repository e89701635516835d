/* `spine replay` (engine.h): a recorded history against a playbook's source, in an engine of
 * its own without a database; ops end the run where the history ends (the workflow's ops see
 * eng->dry), a divergence ends it stuck. */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "intents.h"
#include "sandbox.h"

int spine_engine_replay(const char *path, const char *source, size_t len, const char *input_json,
                        const char *params_json, const char *steps_json, spine_replay_report *out,
                        spine_err *e) {
  memset(out, 0, sizeof *out);
  spine_intents_init();
  uv_loop_t loop;
  uv_loop_init(&loop);
  spine_engine *eng = calloc(1, sizeof *eng);
  if (!eng) return SPINE_ENOMEM;
  eng->loop = &loop;
  eng->dry = 1;
  eng->report = out;
  eng->o.instructions = 50 * 1000 * 1000;
  eng->o.mem_limit = 64 << 20;
  eng->o.playbooks = "playbooks";
  eng->o.virtual_clock = 1;
  eng->o.quiet = 1;
  eng->vnow = spine_clock_real();
  eng->L = spine_sandbox_new_state(0);
  if (!eng->L) {
    free(eng);
    return spine_err_set(e, SPINE_ENOMEM, NULL, NULL, "cannot create the Lua state");
  }
  spine_engine_lua_setup(eng);
  uv_timer_init(&loop, &eng->timer);
  uv_timer_init(&loop, &eng->vtick);
  eng->timer.data = eng->vtick.data = eng;
  char hash[65] = "replay";
  int rc = 0;
  spine_version *v = spine_version_compile(eng, NULL, path, source, len, hash, e);
  if (!v) {
    rc = e ? e->code : SPINE_EINVAL;
  } else {
    spine_wf *wf = spine_wf_new(eng, "replay", v, spine_version_name(v),
                                "00000000000000000000000000000000", NULL, 0);
    if (!wf) abort();
    if (params_json && !(wf->params = strdup(params_json))) abort();
    spine_wf_begin(wf, input_json, steps_json, NULL);
    out->recorded = wf->nrecorded;
    out->replayed = wf->replayed;
    out->nondeterministic = out->ended && out->status == SPINE_WF_STUCK;
    spine_wf_free(wf);
  }
  uv_close((uv_handle_t *)&eng->timer, NULL);
  uv_close((uv_handle_t *)&eng->vtick, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  eng->store = NULL;
  spine_engine_free(eng);
  return rc;
}
