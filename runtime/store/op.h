/* An operation: a few statements with their parameters that must commit together, built by
 * its owner and submitted to the store (store.h), which runs it in a batch and calls it back
 * with its results or its failure. */
#ifndef SPINE_OP_H
#define SPINE_OP_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

typedef struct spine_op spine_op;
typedef void (*spine_op_cb)(spine_op *op);

typedef struct spine_stmt {
  int sql; /* a statement id: spine_sql_id or one from spine_store_statement() */
  int nparams;
  int first;     /* index of its first parameter in the op's parameter arrays */
  int want_rows; /* 1: keep the PGresult for the callback */
} spine_stmt;

/* A unit of work that commits atomically with the others of its batch. Embed it in its owner
 * (a workflow embeds one and reuses it for every step: no allocation per step once grown).
 * Invariant: an op is in at most one queue or batch at a time; `results` are valid only in
 * the callback and are cleared by the next spine_op_reset(). */
struct spine_op {
  spine_op_cb cb;
  void *data;
  spine_stmt *stmts;
  int nstmts, cap_stmts;
  spine_buf params; /* parameter bytes, each NUL-terminated */
  int *param_off;   /* offset of each parameter in `params`, -1 for NULL */
  int nparams, cap_params;
  const char **param_ptr; /* scratch: pointers built at send time */
  int cap_ptr;
  PGresult **results; /* per statement (NULL unless want_rows), owned by the op */
  int cap_results;
  /* A merged statement's answer (the same statement of many ops in one, store.c) lends the op
   * its row instead: statement `lent_stmt` answered row `lent_row` of `lent`, which the store
   * owns and frees once the batch's callbacks have run. */
  const PGresult *lent;
  int lent_stmt, lent_row;
  int status;       /* 0 committed; else SPINE_E* (results then unset) */
  int failed_stmt;  /* the statement that failed, or -1 */
  char sqlstate[6]; /* of the failure, "" if none */
  spine_err *err;   /* the failure, allocated only when one happens: see spine_op_error() */
  int tries;        /* transient failures so far */
  uint32_t key;     /* hash of the lock key (see spine_op_key) */
  unsigned keyed : 1;
  unsigned solo : 1;    /* failed transiently: runs again in a batch of its own */
  unsigned nomerge : 1; /* its merged statement failed: sent as it is until reset (merge.h) */
  unsigned merged : 1;  /* store-private: statements of it went merged in the batch in flight */
  spine_op *next;       /* queue link */
};

void spine_op_init(spine_op *op);
/* Clears statements, parameters and results; keeps memory. */
void spine_op_reset(spine_op *op);
void spine_op_free(spine_op *op);
/* Frees what the op has grown and leaves it as after spine_op_init(): for an owner that parks
 * for long (a waiting workflow), so that it holds no buffers and no results meanwhile. */
void spine_op_release(spine_op *op);
/* The op's failure (empty, code 0, if none). */
const spine_err *spine_op_error(const spine_op *op);
/* The rows the op locks, named by one key (a customer id): ops of one key share a connection,
 * so their transactions never wait for each other. Cleared by spine_op_reset(). */
void spine_op_key(spine_op *op, const char *key, size_t len);
/* Appends a statement; its parameters follow with spine_op_param*(). */
void spine_op_stmt(spine_op *op, int sql, int want_rows);
void spine_op_param(spine_op *op, const char *text); /* NULL = SQL NULL */
void spine_op_param_len(spine_op *op, const char *text, size_t len);
void spine_op_param_int(spine_op *op, int64_t v);
void spine_op_param_bool(spine_op *op, int v);
/* The result of statement i (NULL unless it was added with want_rows, or its row was lent). */
PGresult *spine_op_result(spine_op *op, int i);
/* Statement i's one row, its own result's or a lent one (see `lent`): the row's index in *r,
 * or -1 when the statement answered no row or more than one. Valid in the callback only. */
int spine_op_row(const spine_op *op, int i, const PGresult **r);

#endif
