/* `spine signal ID NAME`: stores a signal for a workflow and wakes whoever runs it. */
#include <stdio.h>

#include "api_ops.h"
#include "buf.h"
#include "cli.h"

static const char *const spec[] = {"data=", "json", NULL};
static const char usage[] = "usage: spine signal ID NAME [--data JSON] [--json]\n"
                            "  Delivers signal NAME (with a JSON payload, default {}) to the\n"
                            "  workflow; kept until the workflow waits for it.\n";

int spine_cli_signal(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__open(&cmd, argc, argv, spec, usage, 2, 2)) return cmd.exit_code;
  const char *id = cmd.a.pos[0], *name = cmd.a.pos[1];
  const char *data = spine_cli__get(&cmd, "data");
  spine_buf out = SPINE_BUF_INIT;
  const char *code = NULL;
  int status = SPINE_EXIT_OK;
  if (spine_api_signal(cmd.c, id, name, data, &out, &code, &cmd.e))
    status = spine_cli__fail(cmd.json, &cmd.e, code);
  else if (cmd.json)
    printf("%s\n", spine_buf_str(&out));
  spine_buf_free(&out);
  PQfinish(cmd.c);
  return status;
}
