/* Operations (op.h): statements and their parameters, grown in place and reused, and the
 * results and failure the store leaves in them. */
#include "op.h"

#include <stdlib.h>
#include <string.h>

void spine_op_init(spine_op *op) {
  memset(op, 0, sizeof *op);
  op->failed_stmt = -1;
}

void spine_op_reset(spine_op *op) {
  for (int i = 0; i < op->nstmts && i < op->cap_results; i++) {
    PQclear(op->results[i]);
    op->results[i] = NULL;
  }
  op->lent = NULL;
  op->nstmts = 0;
  op->nparams = 0;
  spine_buf_reset(&op->params);
  op->status = 0;
  op->failed_stmt = -1;
  op->sqlstate[0] = '\0';
  op->tries = 0;
  op->key = 0;
  op->keyed = 0;
  op->solo = 0;
  op->nomerge = 0;
  op->merged = 0;
  op->next = NULL;
  free(op->err);
  op->err = NULL;
}

void spine_op_free(spine_op *op) {
  spine_op_reset(op);
  free(op->stmts);
  free(op->param_off);
  free(op->param_ptr);
  free(op->results);
  spine_buf_free(&op->params);
  memset(op, 0, sizeof *op);
}

void spine_op_release(spine_op *op) {
  spine_op_free(op);
  spine_op_init(op);
}

const spine_err *spine_op_error(const spine_op *op) {
  static const spine_err none;
  return op->err ? op->err : &none;
}

void spine_op_key(spine_op *op, const char *key, size_t len) {
  uint32_t h = 2166136261u; /* FNV-1a: stable across processes, so every worker routes alike */
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char)key[i]) * 16777619u;
  op->key = h;
  op->keyed = 1;
}

void spine_op_stmt(spine_op *op, int sql, int want_rows) {
  op->stmts = spine_buf_grow_array(op->stmts, &op->cap_stmts, op->nstmts + 1, sizeof *op->stmts);
  op->stmts[op->nstmts++] = (spine_stmt){sql, 0, op->nparams, want_rows};
}

static void add_param(spine_op *op, int off) {
  op->param_off =
      spine_buf_grow_array(op->param_off, &op->cap_params, op->nparams + 1, sizeof *op->param_off);
  op->param_off[op->nparams++] = off;
  op->stmts[op->nstmts - 1].nparams++;
}

void spine_op_param_len(spine_op *op, const char *text, size_t len) {
  if (!text) {
    add_param(op, -1);
    return;
  }
  int off = (int)op->params.len;
  if (spine_buf_append(&op->params, text, len) || spine_buf_putc(&op->params, '\0')) abort();
  add_param(op, off);
}

void spine_op_param(spine_op *op, const char *text) {
  spine_op_param_len(op, text, text ? strlen(text) : 0);
}

/* Every step has a few integer parameters: formatted by hand, not through vfprintf. */
void spine_op_param_int(spine_op *op, int64_t v) {
  char tmp[24], *end = tmp + sizeof tmp, *p = end;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--p = '-';
  spine_op_param_len(op, p, (size_t)(end - p));
}

void spine_op_param_bool(spine_op *op, int v) {
  spine_op_param(op, v ? "t" : "f");
}

PGresult *spine_op_result(spine_op *op, int i) {
  return i < op->nstmts && i < op->cap_results ? op->results[i] : NULL;
}

int spine_op_row(const spine_op *op, int i, const PGresult **r) {
  if (op->lent && op->lent_stmt == i) {
    *r = op->lent;
    return op->lent_row;
  }
  *r = i < op->nstmts && i < op->cap_results ? op->results[i] : NULL;
  return *r && PQntuples(*r) == 1 ? 0 : -1;
}
