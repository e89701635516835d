/* Merged statements: within one batch, the same leading statements of many ops (a step's record,
 * a workflow's start or end: sql.h's *_MANY forms) go to PostgreSQL as one statement whose
 * parameters are arrays of the ops' values, instead of one statement per op. The database then
 * plans and starts one statement for 500 rows: per row it pays the insert, not the statement
 * (docs/performance.md). Used by the store (store.c) when it sends a batch. */
#ifndef SPINE_MERGE_H
#define SPINE_MERGE_H

#include "buf.h"
#include "op.h"

#define SPINE_MERGE_SHAPE  4  /* leading statements of an op that may merge */
#define SPINE_MERGE_GROUPS 16 /* distinct shapes merged per batch; other ops go one by one */

/* Ops whose leading statements are the same mergeable ones, in batch order. */
typedef struct spine_merge_group {
  int shape[SPINE_MERGE_SHAPE];   /* the statement ids (single forms) */
  int nparams[SPINE_MERGE_SHAPE]; /* and their parameters' count */
  int merged[SPINE_MERGE_SHAPE];  /* their merged forms */
  int rows[SPINE_MERGE_SHAPE];    /* 1: the merged form answers a row per op (its place last) */
  int len;
  int first, n; /* their ops: members[first .. first + n) */
} spine_merge_group;

typedef struct spine_merge_plan {
  spine_merge_group groups[SPINE_MERGE_GROUPS];
  int ngroups;
  spine_op **members; /* grown by spine_merge_plan(), freed by spine_merge_plan_free() */
  int cap_members;
  int *merged; /* per op of the batch: how many of its leading statements went merged (0: none) */
  int cap_merged;
} spine_merge_plan;

/* Groups `ops` (a batch, in order): an op whose leading statements (all with a merged form by
 * `form`; those that want rows only if their merged form answers a row per op) match another's
 * joins its group; only groups of two ops or more stay. An op that
 * is solo or nomerge never merges. Returns the number of groups; plan->merged[i] says how many of
 * ops[i]'s statements a group sends. */
typedef int (*spine_merge_form_fn)(int stmt, int *rows); /* merged form of stmt, or -1 */
int spine_merge_plan_make(spine_merge_plan *plan, spine_op **ops, int n, spine_merge_form_fn form);
void spine_merge_plan_free(spine_merge_plan *plan);

/* The parameters of the merged form of statement `pos` of `members` (n ops): one PostgreSQL
 * array literal per parameter of the single form, written into `b` (reset first); `ptrs` (at
 * least the statement's nparams) points into it. Returns the number of parameters. */
int spine_merge_params(spine_buf *b, spine_op **members, int n, int pos, const char **ptrs,
                       int *offs);

#endif
