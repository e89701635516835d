/* Merged statements (merge.h): the plan of a batch's groups, and the array literals of their
 * parameters. */
#include "merge.h"

#include <stdlib.h>
#include <string.h>

/* How many leading statements of `op` could merge. */
static int mergeable(const spine_op *op, spine_merge_form_fn form) {
  if (op->solo || op->nomerge) return 0;
  int len = 0;
  while (len < op->nstmts && len < SPINE_MERGE_SHAPE) {
    const spine_stmt *st = &op->stmts[len];
    int rows = 0;
    if (form(st->sql, &rows) < 0 || (st->want_rows && !rows)) break;
    len++;
  }
  return len;
}

static int same_shape(const spine_merge_group *g, const spine_op *op, int len) {
  if (g->len != len) return 0;
  for (int i = 0; i < len; i++)
    if (g->shape[i] != op->stmts[i].sql || g->nparams[i] != op->stmts[i].nparams) return 0;
  return 1;
}

int spine_merge_plan_make(spine_merge_plan *plan, spine_op **ops, int n, spine_merge_form_fn form) {
  plan->ngroups = 0;
  plan->members = spine_buf_grow_array(plan->members, &plan->cap_members, n, sizeof(spine_op *));
  plan->merged = spine_buf_grow_array(plan->merged, &plan->cap_merged, n, sizeof(int));
  /* First pass: each op's group (or -1), and the groups' sizes. */
  for (int i = 0; i < n; i++) {
    int len = mergeable(ops[i], form);
    plan->merged[i] = -1;
    if (!len) continue;
    int g = 0;
    while (g < plan->ngroups && !same_shape(&plan->groups[g], ops[i], len))
      g++;
    if (g == plan->ngroups) {
      if (g == SPINE_MERGE_GROUPS) continue;
      spine_merge_group *ng = &plan->groups[plan->ngroups++];
      ng->len = len;
      for (int k = 0; k < len; k++) {
        ng->shape[k] = ops[i]->stmts[k].sql;
        ng->nparams[k] = ops[i]->stmts[k].nparams;
        ng->merged[k] = form(ng->shape[k], &ng->rows[k]);
      }
      ng->n = 0;
    }
    plan->groups[g].n++;
    plan->merged[i] = g;
  }
  /* Groups of one are no groups: their op goes as it is. The others get their places. */
  int at = 0, kept = 0, remap[SPINE_MERGE_GROUPS];
  for (int g = 0; g < plan->ngroups; g++) {
    if (plan->groups[g].n < 2) {
      remap[g] = -1;
      continue;
    }
    remap[g] = kept;
    spine_merge_group moved = plan->groups[g];
    moved.first = at;
    at += moved.n;
    moved.n = 0;
    plan->groups[kept++] = moved;
  }
  plan->ngroups = kept;
  for (int i = 0; i < n; i++) {
    int g = plan->merged[i] < 0 ? -1 : remap[plan->merged[i]];
    if (g < 0) {
      plan->merged[i] = 0;
      continue;
    }
    spine_merge_group *grp = &plan->groups[g];
    plan->members[grp->first + grp->n++] = ops[i];
    plan->merged[i] = grp->len;
  }
  return plan->ngroups;
}

void spine_merge_plan_free(spine_merge_plan *plan) {
  free(plan->members);
  free(plan->merged);
  memset(plan, 0, sizeof *plan);
}

/* One element of an array literal: NULL, or the text quoted, with " and \ escaped. */
static void element(spine_buf *b, const char *s) {
  if (!s) {
    if (spine_buf_append(b, "NULL", 4)) abort();
    return;
  }
  if (spine_buf_putc(b, '"')) abort();
  for (;;) {
    size_t run = strcspn(s, "\"\\");
    if (spine_buf_append(b, s, run)) abort();
    s += run;
    if (!*s) break;
    if (spine_buf_putc(b, '\\') || spine_buf_putc(b, *s)) abort();
    s++;
  }
  if (spine_buf_putc(b, '"')) abort();
}

int spine_merge_params(spine_buf *b, spine_op **members, int n, int pos, const char **ptrs,
                       int *offs) {
  spine_buf_reset(b);
  int np = members[0]->stmts[pos].nparams;
  for (int k = 0; k < np; k++) {
    offs[k] = (int)b->len;
    if (spine_buf_putc(b, '{')) abort();
    for (int m = 0; m < n; m++) {
      const spine_op *op = members[m];
      int off = op->param_off[op->stmts[pos].first + k];
      if (m && spine_buf_putc(b, ',')) abort();
      element(b, off < 0 ? NULL : op->params.data + off);
    }
    if (spine_buf_putc(b, '}') || spine_buf_putc(b, '\0')) abort();
  }
  for (int k = 0; k < np; k++)
    ptrs[k] = b->data + offs[k];
  return np;
}
