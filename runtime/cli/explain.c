/* `spine explain ID`: why a workflow is where it is, in plain words — the signal or timer it
 * waits for and since when, the retry it is in, the worker and lease that hold it, or the
 * error that stopped it (a non-determinism names the recorded and the new step). The facts
 * come from one query; the sentence is built there too, so text and JSON agree. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char *const spec[] = {"json", NULL};
static const char usage[] =
    "usage: spine explain ID [--json]\n"
    "  Says in plain words why the workflow is where it is: what it waits for and since when,\n"
    "  the retry it is in, the worker and lease that hold it, or what stopped it.\n";

/* clang-format off */
#define ISO(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
/* Ages and time left: on the engine's clock (a manual one in tests), read as the statement runs,
 * after its snapshot, so that a step it sees committed is never in its future. */
#define AGO(x) "date_trunc('second', spine.clock_timestamp() - (" x "))::text"

static const char explain_sql[] =
    "WITH w AS (SELECT * FROM spine.workflows WHERE id = $1),"
    " s AS (SELECT st.* FROM spine.steps st, w WHERE st.workflow_id = w.id"
    "       ORDER BY st.seq DESC LIMIT 1),"
    " k AS (SELECT wk.* FROM spine.workers wk, w WHERE wk.id = w.owner),"
    " g AS (SELECT coalesce(jsonb_agg(jsonb_build_object('name', sg.name, 'at', " ISO("sg.created_at") ")"
    "       ORDER BY sg.id), '[]') AS pending, string_agg(DISTINCT sg.name, ', ') AS names"
    "       FROM spine.signals sg, w WHERE sg.workflow_id = w.id AND sg.consumed_seq IS NULL),"
    " facts AS (SELECT w.*, g.pending, g.names,"
    "   (SELECT count(*) FROM spine.workers WHERE lease_until > now()) AS alive,"
    "   (SELECT count(*) FROM spine.steps st WHERE st.workflow_id = w.id) AS nsteps,"
    "   s.seq AS s_seq, s.kind AS s_kind, s.name AS s_name, s.status AS s_status,"
    "   s.attempt AS s_attempt, s.error AS s_error, s.started_at AS s_started, s.wake_at AS s_wake,"
    "   k.id AS k_id, k.host AS k_host, k.pid AS k_pid, k.lease_until AS k_until"
    "   FROM w LEFT JOIN s ON true LEFT JOIN k ON true, g)"
    " SELECT x::text, x->>'explanation' FROM (SELECT jsonb_build_object('id', id, 'status', status, 'process', process,"
    "  'version', version, 'state', state, 'waiting_for', waiting_for,"
    "  'since', CASE WHEN status = 'waiting' THEN " ISO("s_started") " END,"
    "  'signals_pending', pending,"
    "  'lease', CASE WHEN k_id IS NOT NULL THEN jsonb_build_object('worker', k_id, 'host', k_host,"
    "    'pid', k_pid, 'until', " ISO("k_until") ", 'alive', k_until > now()) END,"
    "  'error', error,"
    "  'explanation', 'Workflow ' || id || ' (' || process || ') ' || CASE"
    "   WHEN status = 'waiting' AND waiting_for->>'kind' = 'timer' THEN"
    "    format('is sleeping until %s (in %s), since %s.', waiting_for->>'until',"
    "      date_trunc('second', (waiting_for->>'until')::timestamptz - spine.clock_timestamp())::text, " ISO("s_started") ")"
    "   WHEN status = 'waiting' AND waiting_for->>'kind' = 'child' THEN"
    "    format('waits for its child workflow (%s) to end, since %s (%s ago).',"
    "      waiting_for->>'name', " ISO("s_started") ", " AGO("s_started") ")"
    "   WHEN status = 'waiting' THEN"
    "    format('waits for signal \"%s\" since %s (%s ago)%s%s.', waiting_for->>'name',"
    "      " ISO("s_started") ", " AGO("s_started") ","
    "      CASE WHEN waiting_for ? 'until' THEN format('; it stops waiting at %s',"
    "        waiting_for->>'until') ELSE '' END,"
    "      CASE WHEN names IS NOT NULL THEN format('; signals kept for later waits: %s', names)"
    "        ELSE '' END)"
    "   WHEN status = 'running' AND s_status = 'retrying' THEN"
    "    format('is retrying step \"%s\": attempt %s failed (%s); the next attempt is at %s.',"
    "      s_name, s_attempt, s_error->>'message', " ISO("s_wake") ")"
    "   WHEN status IN ('running', 'waiting') AND k_id IS NOT NULL AND k_until > now() THEN"
    "    format('is running on worker %s (%s, pid %s), whose lease runs until %s.', k_id, k_host,"
    "      k_pid, " ISO("k_until") ")"
    "   WHEN status IN ('running', 'waiting') AND k_id IS NOT NULL THEN"
    "    format('was running on worker %s (%s, pid %s), whose lease expired at %s: another worker'"
    "      || ' takes it over.', k_id, k_host, k_pid, " ISO("k_until") ")"
    "   WHEN status IN ('pending', 'running') THEN"
    "    format('is ready to run since %s, but no worker has claimed it yet (%s worker%s alive).',"
    "      " ISO("coalesce(wake_at, created_at)") ", alive, CASE WHEN alive = 1 THEN ' is'"
    "      ELSE 's are' END)"
    "   WHEN status = 'stuck' THEN"
    "    format('is stuck since %s: %s. Nothing was overwritten; fix the cause (see spine replay),'"
    "      || ' then spine retry %s.', " ISO("updated_at") ", error->>'message', id)"
    "   WHEN status = 'paused' THEN"
    "    format('is paused since %s: %s. Resolve it with spine retry or spine cancel.',"
    "      " ISO("updated_at") ", coalesce(error->>'message', 'an operator paused it'))"
    "   WHEN status = 'completed' THEN"
    "    format('completed at %s after %s step%s.', " ISO("coalesce(ended_at, updated_at)") ","
    "      nsteps, CASE WHEN nsteps = 1 THEN '' ELSE 's' END)"
    "   WHEN status = 'cancelled' THEN"
    "    format('was cancelled at %s; its compensations ran.', " ISO("coalesce(ended_at, updated_at)") ")"
    "   WHEN status = 'compensated' THEN"
    "    format('failed at %s (%s%s) and its compensations ran.', " ISO("coalesce(ended_at, updated_at)") ","
    "      error->>'message', CASE WHEN error ? 'where' AND position(error->>'where' in"
    "      error->>'message') = 0 THEN ', at ' || (error->>'where') ELSE '' END)"
    "   ELSE"
    "    format('failed at %s: %s%s.', " ISO("coalesce(ended_at, updated_at)") ", error->>'message',"
    "      CASE WHEN error ? 'where' AND position(error->>'where' in error->>'message') = 0"
    "      THEN ' (at ' || (error->>'where') || ')' ELSE '' END)"
    "  END) AS x FROM facts) o";
/* clang-format on */

/* The sentence alone: the facts are in --json and spine show. */
static void print_sentence(PGresult *r) {
  printf("%s\n", PQgetvalue(r, 0, 1));
}

int spine_cli_explain(int argc, char **argv) {
  return spine_cli__show_one(argc, argv, spec, usage, explain_sql, print_sentence);
}
