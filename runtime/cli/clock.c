/* `spine clock`: the manual clock of a running `spine serve --clock manual`, from a terminal.
 * It asks that serve's clock routes (runtime/server/serve_clock.c: GET /v1/clock, POST
 * /v1/clock/advance) over HTTP, so the clock moves as the test kit moves it, with the same
 * checks and refusals; it never writes spine.clock itself (the engine's timers would not know). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "buf.h"
#include "cli.h"
#include "http_client.h"
#include "jsondoc.h"
#include "log.h"

static const char *const spec[] = {"to=", "url=", "json", NULL};
static const char usage[] =
    "usage: spine clock [--url URL] [--json]\n"
    "       spine clock advance DURATION | --to TIME [--url URL] [--json]\n"
    "  The manual clock of a running `spine serve --clock manual` (tests, demos):\n"
    "  without a command, what time it says; `advance 3d` moves it forward by a duration,\n"
    "  `advance --to 2026-03-16T09:00:00Z` to a time, `advance` alone waits until the engine\n"
    "  is idle. Every timer due by then fires, in order, and the command returns once the\n"
    "  engine is idle at the new time. URL: serve's address (default http:// and\n"
    "  $SPINE_LISTEN, else $SPINE_HTTP_ADDR, else 127.0.0.1:7780).\n";

typedef struct answer {
  int error, status;
  char message[256];
  spine_buf body;
} answer;

static void on_answer(void *data, const spine_http_client_response *res) {
  answer *a = data;
  a->error = res->error;
  a->status = res->status;
  snprintf(a->message, sizeof a->message, "%s", res->message);
  if (res->body) spine_buf_append(&a->body, res->body, res->body_len);
}

/* One request on a loop of its own; fills `a`. 0, or the client's error (e says why). */
static int ask(const char *url, const char *body, answer *a, spine_err *e) {
  uv_loop_t loop;
  if (uv_loop_init(&loop)) return spine_err_set(e, SPINE_EIO, NULL, NULL, "no event loop");
  spine_http_client *client = NULL;
  int rc = spine_http_client_new(&loop, &client, e);
  if (!rc) {
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    spine_http_client_request req = {0};
    req.method = body ? SPINE_HTTP_CLIENT_POST : SPINE_HTTP_CLIENT_GET;
    req.url = url;
    req.headers = headers;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.timeout_ms = 600000; /* an advance over months of timers answers once they all ran */
    rc = spine_http_client_send(client, &req, on_answer, a, NULL, e);
    if (!rc) uv_run(&loop, UV_RUN_DEFAULT);
    spine_http_client_close(client, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop);
  if (!rc && a->error)
    rc = spine_err_set(e, a->error, url, NULL,
                       "%s (is spine serve --clock manual running there? --url names it)",
                       a->message);
  return rc;
}

static const char *str(const spine_jsondoc *o, const char *key) {
  const spine_jsondoc *v = o ? spine_jsondoc_get(o, key) : NULL;
  return v && v->type == SPINE_JSONDOC_STRING ? v->str : NULL;
}

int spine_cli_clock(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 0, 2)) return cmd.exit_code;
  const char *verb = cmd.a.npos > 0 ? cmd.a.pos[0] : NULL;
  const char *by = cmd.a.npos > 1 ? cmd.a.pos[1] : NULL, *to = spine_cli__get(&cmd, "to");
  if ((verb && strcmp(verb, "advance")) || (!verb && to) || (by && to)) {
    fprintf(stderr, "spine clock: %s\n\n%s",
            by && to ? "give a DURATION or --to TIME, not both" : "unknown command", usage);
    return SPINE_EXIT_USAGE;
  }
  char url[512];
  const char *base = spine_cli__get(&cmd, "url");
  const char *addr = getenv("SPINE_LISTEN");
  if (!addr || !*addr) addr = getenv("SPINE_HTTP_ADDR");
  if (!addr || !*addr) addr = "127.0.0.1:7780";
  size_t blen = base ? strlen(base) : 0;
  while (blen && base[blen - 1] == '/')
    blen--;
  if (base)
    snprintf(url, sizeof url, "%.*s/v1/clock%s", (int)blen, base, verb ? "/advance" : "");
  else
    snprintf(url, sizeof url, "http://%s/v1/clock%s", addr, verb ? "/advance" : "");
  spine_buf body = SPINE_BUF_INIT; /* the route reads the duration or time, and refuses */
  if (verb) {
    spine_buf_puts(&body, "{");
    if (by || to) {
      spine_buf_puts(&body, by ? "\"by\":" : "\"to\":");
      spine_log_json_string(&body, by ? by : to, strlen(by ? by : to));
    }
    spine_buf_puts(&body, "}");
  }
  answer a = {0};
  int rc = ask(url, verb ? spine_buf_str(&body) : NULL, &a, &cmd.e);
  spine_buf_free(&body);
  spine_jsondoc *doc = NULL;
  int line;
  if (!rc && spine_jsondoc_parse(spine_buf_str(&a.body), a.body.len, &doc, &line, NULL))
    rc = spine_err_set(&cmd.e, SPINE_EIO, url, NULL, "answered %d without JSON", a.status);
  if (!rc && a.status != 200) {
    const spine_jsondoc *err = spine_jsondoc_get(doc, "error");
    const char *msg = str(err, "message");
    /* the message names the member ("by: bad duration unit"): no field, or it says it twice */
    rc = spine_err_set(&cmd.e, a.status == 400 ? SPINE_EINVAL : SPINE_ECONFLICT, NULL, NULL, "%s",
                       msg ? msg : "refused");
  }
  int status = SPINE_EXIT_OK;
  if (rc)
    status = spine_cli__fail(cmd.json, &cmd.e, NULL);
  else if (cmd.json)
    printf("%s", spine_buf_str(&a.body));
  else {
    const spine_jsondoc *fired = spine_jsondoc_get(doc, "fired");
    printf("%s (%s clock)", str(doc, "now"), str(doc, "clock") ? str(doc, "clock") : "?");
    if (fired && fired->type == SPINE_JSONDOC_NUMBER)
      printf(", %.0f timer%s fired", fired->num, fired->num == 1 ? "" : "s");
    printf("\n");
  }
  spine_jsondoc_free(doc);
  spine_buf_free(&a.body);
  return status;
}
