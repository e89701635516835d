/* `spine tokens create|list|revoke`: the API tokens of `spine serve`'s /v1 routes (api_tokens.h).
 * create prints the token once: the database keeps only its SHA-256. */
#include <stdio.h>
#include <string.h>

#include "api_tokens.h"
#include "buf.h"
#include "cli.h"
#include "duration.h"
#include "jsondoc.h"
#include "log.h"

static const char *const spec[] = {"subject=", "scopes=", "expires=", "json", NULL};
static const char usage[] =
    "usage: spine tokens create --subject WHO --scopes S1,S2 [--expires 30d] [--json]\n"
    "       spine tokens list [--json]\n"
    "       spine tokens revoke ID [--json]\n"
    "  API tokens for `spine serve`'s HTTP API (docs/api.md). create prints the token once;\n"
    "  the database keeps only its hash. WHO is recorded as the actor of what the token does.\n"
    "  Scopes: cases:start, workflows:read, workflows:operate, tasks:resolve, intents:apply,\n"
    "  admin (admin implies every other).\n";

static int create(spine_cli_cmd *cmd) {
  const char *expires = spine_cli__get(cmd, "expires");
  int64_t ms = 0;
  if (expires && (spine_duration_parse(expires, &ms, NULL) || ms <= 0)) {
    fprintf(stderr, "spine tokens: --expires takes a duration (30d, 12h)\n");
    return SPINE_EXIT_USAGE;
  }
  if (!spine_cli__get(cmd, "subject") || !spine_cli__get(cmd, "scopes")) {
    fprintf(stderr, "spine tokens create: give --subject and --scopes\n\n%s", usage);
    return SPINE_EXIT_USAGE;
  }
  if (spine_cli__connect(cmd)) return cmd->exit_code;
  char token[64], id[40];
  if (spine_api_tokens_create(cmd->c, spine_cli__get(cmd, "subject"), spine_cli__get(cmd, "scopes"),
                              ms, token, id, &cmd->e))
    return spine_cli__fail(cmd->json, &cmd->e, NULL);
  if (cmd->json) {
    spine_buf b = SPINE_BUF_INIT;
    spine_buf_printf(&b, "{\"id\":\"%s\",\"token\":\"%s\",\"subject\":", id, token);
    const char *subject = spine_cli__get(cmd, "subject");
    spine_log_json_string(&b, subject, strlen(subject));
    spine_buf_puts(&b, "}");
    printf("%s\n", spine_buf_str(&b));
    spine_buf_free(&b);
  } else {
    printf("%s\n", token);
    fprintf(stderr, "token %s created; it is shown only this once\n", id);
  }
  return SPINE_EXIT_OK;
}

/* The tokens as a table, read back from the JSON of spine_api_tokens_list. */
static void print_list(const spine_buf *b) {
  spine_jsondoc *doc = NULL;
  int line;
  spine_err e;
  if (spine_jsondoc_parse(b->data, b->len, &doc, &line, &e)) return;
  const spine_jsondoc *list = spine_jsondoc_get(doc, "tokens");
  printf("%-24s %-24s %-8s %-25s %-25s %s\n", "ID", "SUBJECT", "STATUS", "EXPIRES", "LAST USED",
         "SCOPES");
  for (const spine_jsondoc *t = list ? list->child : NULL; t; t = t->next) {
    char scopes[512] = "";
    const spine_jsondoc *sc = spine_jsondoc_get(t, "scopes");
    for (const spine_jsondoc *s = sc ? sc->child : NULL; s; s = s->next)
      if (s->type == SPINE_JSONDOC_STRING)
        snprintf(scopes + strlen(scopes), sizeof scopes - strlen(scopes), "%s%s",
                 scopes[0] ? "," : "", s->str);
    printf("%-24s %-24s %-8s %-25s %-25s %s\n", spine_jsondoc_str(t, "id", "-"),
           spine_jsondoc_str(t, "subject", "-"), spine_jsondoc_str(t, "status", "-"),
           spine_jsondoc_str(t, "expires_at", "-"), spine_jsondoc_str(t, "last_used_at", "-"),
           scopes);
  }
  if (!list || !list->child) printf("no tokens\n");
  spine_jsondoc_free(doc);
}

int spine_cli_tokens(int argc, char **argv) {
  spine_cli_cmd cmd;
  if (spine_cli__begin(&cmd, argc, argv, spec, usage, 1, 2)) return cmd.exit_code;
  const char *verb = cmd.a.pos[0];
  int status = SPINE_EXIT_OK;
  if (!strcmp(verb, "create") && cmd.a.npos == 1) {
    status = create(&cmd);
  } else if (!strcmp(verb, "list") && cmd.a.npos == 1) {
    if (spine_cli__connect(&cmd)) return cmd.exit_code;
    spine_buf b = SPINE_BUF_INIT;
    if (spine_api_tokens_list(cmd.c, &b, &cmd.e))
      status = spine_cli__fail(cmd.json, &cmd.e, NULL);
    else if (cmd.json)
      printf("%s\n", spine_buf_str(&b));
    else
      print_list(&b);
    spine_buf_free(&b);
  } else if (!strcmp(verb, "revoke") && cmd.a.npos == 2) {
    if (spine_cli__connect(&cmd)) return cmd.exit_code;
    if (spine_api_tokens_revoke(cmd.c, cmd.a.pos[1], &cmd.e))
      status = spine_cli__fail(cmd.json, &cmd.e, NULL);
    else if (cmd.json)
      printf("{\"id\":\"%s\",\"status\":\"revoked\"}\n", cmd.a.pos[1]);
    else
      printf("%s: revoked\n", cmd.a.pos[1]);
  } else {
    fprintf(stderr, "spine tokens: unknown or incomplete command\n\n%s", usage);
    return SPINE_EXIT_USAGE;
  }
  if (cmd.c) PQfinish(cmd.c);
  return status;
}
