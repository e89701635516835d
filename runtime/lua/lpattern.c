/* Lua 5.4 patterns under a step budget (lpattern.h): a pattern compiles to nodes (classes as
 * 256-bit sets) that a backtracking matcher walks, recursing only at quantifiers' choices and
 * charging as it goes. Owns nothing past a call but a gmatch iterator's state (a userdata);
 * never mallocs, so that any step may raise. */
#include "lpattern.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stddef.h>
#include <string.h>

#define MAX_CAPTURES 32   /* Lua's LUA_MAXCAPTURES: patterns keep that limit */
#define MAX_DEPTH    200  /* open choices (quantifiers being tried) before "pattern too complex" */
#define STRIDE       1000 /* steps between two charges */
#define SMALL_NODES  32   /* a pattern this small compiles on the C stack */
#define SMALL_SETS   8
#define CALL_COST    16 /* steps for a gsub replacement's call or lookup, which may be C code */

/* What a node matches. Pattern errors are raised when a match reaches them, as Lua does
 * ("x[" finds nothing in "abc" rather than failing), so a malformed rest compiles to N_ERROR. */
enum {
  N_END,      /* the pattern's end: the match succeeds */
  N_CHAR,     /* one byte: c */
  N_SET,      /* one byte of sets[arg]: '.', %a, [...] */
  N_OPEN,     /* '(' of capture arg */
  N_POSITION, /* '()': capture arg is a position */
  N_CLOSE,    /* ')' of capture arg */
  N_EOS,      /* '$' as the pattern's last byte: the subject's end */
  N_BALANCE,  /* %bxy: c is x, d is y */
  N_FRONTIER, /* %f[set]: where a byte of sets[arg] follows one that is not */
  N_BACKREF,  /* %0-%9: c is the digit; d says the capture is closed before this node */
  N_ERROR,    /* a malformed rest: c indexes errors[] */
};

/* How often an N_CHAR or N_SET node matches: once, '?', '*', '+', '-'. */
enum { Q_ONE, Q_OPT, Q_STAR, Q_PLUS, Q_LAZY };

enum { E_ESCAPE, E_BRACKET, E_FRONTIER, E_BALANCE, E_CLOSE, E_CAPTURES };
static const char *const errors[] = {
    "malformed pattern (ends with '%')", "malformed pattern (missing ']')",
    "missing '[' after '%f' in pattern", "malformed pattern (missing arguments to '%b')",
    "invalid pattern capture",           "too many captures",
};

typedef struct node {
  unsigned char kind, quant, c, d;
  size_t arg; /* N_SET, N_FRONTIER: the set; N_OPEN, N_POSITION, N_CLOSE: the capture */
} node;

typedef struct charset {
  uint32_t bits[8];
} charset;

/* The class letters; classes[2 * i] is the set of %x for letters[i], classes[2 * i + 1] its
 * complement (%X). */
static const char letters[] = "acdglpsuwxz";
#define NCLASSES (sizeof letters - 1)

/* What the functions of one registration share (their upvalue): the charge, and each class's
 * set, built once (256 ctype calls each: otherwise the cost of compiling a pattern). */
typedef struct shared {
  spine_lpattern_charge charge;
  charset classes[2 * NCLASSES];
} shared;

typedef struct program {
  charset *sets;
  node *nodes;
  int ncaps; /* captures a match returns (all of the pattern's: a match walks every node) */
} program;

/* Steps taken and not yet charged. */
typedef struct budget {
  lua_State *L;
  const shared *lib;
  uint64_t steps;
} budget;

static budget budget_of(lua_State *L, int up) {
  budget b = {L, lua_touserdata(L, lua_upvalueindex(up)), 0};
  return b;
}

static void pay(budget *b) {
  uint64_t n = b->steps;
  b->steps = 0;
  if (b->lib->charge && n) b->lib->charge(b->L, (int64_t)n);
}

static inline void take(budget *b, uint64_t n) {
  b->steps += n;
  if (b->steps >= STRIDE) pay(b);
}

/* ---- character classes ---- */

static inline unsigned char uc(char c) {
  return (unsigned char)c;
}

static void set_add(charset *s, int c) {
  s->bits[c >> 5] |= 1u << (c & 31);
}

static inline int set_has(const charset *s, int c) {
  return (int)(s->bits[c >> 5] >> (c & 31) & 1);
}

static int is_zero(int c) {
  return c == 0; /* %z, deprecated since 5.2, still there: the zero byte */
}

/* The test of each class, in the order of letters[]. */
static int (*const class_tests[])(int) = {isalpha, iscntrl, isdigit, isgraph,  islower, ispunct,
                                          isspace, isupper, isalnum, isxdigit, is_zero};
_Static_assert(sizeof class_tests / sizeof class_tests[0] == NCLASSES, "a test per class letter");

static int is_class(int cl) {
  return cl && strchr(letters, tolower(cl)) != NULL;
}

/* Adds %cl to s: a class's set, or cl itself. */
static void set_add_class(const shared *lib, charset *s, int cl) {
  if (!is_class(cl)) {
    set_add(s, cl);
    return;
  }
  const charset *c = &lib->classes[2 * (strchr(letters, tolower(cl)) - letters) + !!isupper(cl)];
  for (int i = 0; i < 8; i++)
    s->bits[i] |= c->bits[i];
}

/* The ']' that closes the set whose '[' is at q, or NULL. Its first member may be ']' itself
 * (after an optional '^'), and '%' escapes the byte after it. */
static const char *bracket_end(const char *q, const char *end) {
  q++;
  if (q < end && *q == '^') q++;
  for (;;) {
    if (q >= end) return NULL;
    q += *q == '%' && q + 1 < end ? 2 : 1;
    if (q < end && *q == ']') return q;
  }
}

/* Fills s with the set from '[' at q to its ']' at close: members, ranges x-y, %classes, and
 * '^' first for the complement. */
static void bracket_fill(budget *b, charset *s, const char *q, const char *close) {
  int negate = 0;
  q++;
  if (*q == '^') {
    negate = 1;
    q++;
  }
  for (; q < close; q++) {
    if (*q == '%') {
      q++;
      set_add_class(b->lib, s, uc(*q));
      take(b, 1);
    } else if (q + 2 < close && q[1] == '-') {
      for (int c = uc(q[0]); c <= uc(q[2]); c++)
        set_add(s, c);
      q += 2;
      take(b, 8);
    } else {
      set_add(s, uc(*q));
      take(b, 1);
    }
  }
  if (negate)
    for (int i = 0; i < 8; i++)
      s->bits[i] = ~s->bits[i];
}

/* ---- compiling ---- */

typedef struct compiler {
  budget *b;
  const char *p, *end;
  program *out; /* NULL while sizing (from the start, or once out of room): nothing written */
  size_t max_nodes, max_sets; /* the room in out */
  size_t nnodes, nsets;
  int ncaps;
  int open[MAX_CAPTURES]; /* captures opened and not yet closed, innermost last */
  int nopen;
  unsigned char closed[MAX_CAPTURES]; /* closed (or a position) before the current item */
  node scratch_node;
} compiler;

static node *emit(compiler *cp, int kind) {
  if (cp->out && cp->nnodes == cp->max_nodes) cp->out = NULL;
  node *n = cp->out ? &cp->out->nodes[cp->nnodes] : &cp->scratch_node;
  cp->nnodes++;
  memset(n, 0, sizeof *n);
  n->kind = (unsigned char)kind;
  take(cp->b, 1);
  return n;
}

/* A new set for node n: NULL while sizing (sets are filled only when written). */
static charset *new_set(compiler *cp, node *n) {
  n->arg = cp->nsets++;
  if (cp->out && n->arg == cp->max_sets) cp->out = NULL;
  if (!cp->out) return NULL;
  charset *s = &cp->out->sets[n->arg];
  memset(s, 0, sizeof *s);
  return s;
}

/* Ends the program with an error node: false, for the caller to return. */
static int error_node(compiler *cp, int e) {
  emit(cp, N_ERROR)->c = (unsigned char)e;
  return 0;
}

/* A single-byte item at cp->p and its quantifier; false once an error node ends the program. */
static int single_item(compiler *cp) {
  const char *p = cp->p, *next = p + 1;
  node *n;
  if (*p == '%') {
    if (p + 1 >= cp->end) return error_node(cp, E_ESCAPE);
    if (is_class(uc(p[1]))) {
      charset *set = new_set(cp, n = emit(cp, N_SET));
      if (set) set_add_class(cp->b->lib, set, uc(p[1]));
    } else {
      n = emit(cp, N_CHAR);
      n->c = uc(p[1]);
    }
    next = p + 2;
  } else if (*p == '[') {
    const char *close = bracket_end(p, cp->end);
    if (!close) return error_node(cp, E_BRACKET);
    charset *set = new_set(cp, n = emit(cp, N_SET));
    if (set) bracket_fill(cp->b, set, p, close);
    next = close + 1;
  } else if (*p == '.') {
    charset *set = new_set(cp, n = emit(cp, N_SET));
    if (set) memset(set, 0xff, sizeof *set);
  } else {
    n = emit(cp, N_CHAR);
    n->c = uc(*p);
  }
  n->quant = Q_ONE;
  if (next < cp->end) {
    const char *q = strchr("?*+-", *next);
    if (*next && q) {
      static const unsigned char quants[] = {Q_OPT, Q_STAR, Q_PLUS, Q_LAZY};
      n->quant = quants[q - "?*+-"];
      next++;
    }
  }
  cp->p = next;
  return 1;
}

/* Compiles cp->p..cp->end; counts nodes and sets, and writes them when cp->out is set. */
static void compile(compiler *cp) {
  while (cp->p < cp->end) {
    const char *p = cp->p;
    node *n;
    switch (*p) {
      case '(':
        if (cp->ncaps == MAX_CAPTURES) {
          error_node(cp, E_CAPTURES);
          return;
        }
        if (p + 1 < cp->end && p[1] == ')') {
          n = emit(cp, N_POSITION);
          cp->closed[cp->ncaps] = 1;
          cp->p += 2;
        } else {
          n = emit(cp, N_OPEN);
          cp->open[cp->nopen++] = cp->ncaps;
          cp->closed[cp->ncaps] = 0;
          cp->p++;
        }
        n->arg = (size_t)cp->ncaps++;
        continue;
      case ')':
        if (cp->nopen == 0) {
          error_node(cp, E_CLOSE);
          return;
        }
        n = emit(cp, N_CLOSE);
        n->arg = (size_t)cp->open[--cp->nopen];
        cp->closed[n->arg] = 1;
        cp->p++;
        continue;
      case '$':
        if (p + 1 == cp->end) {
          emit(cp, N_EOS);
          cp->p++;
          continue;
        }
        break; /* elsewhere a '$' is itself */
      case '%':
        if (p + 1 >= cp->end) break;
        if (p[1] == 'b') {
          if (p + 3 >= cp->end) {
            error_node(cp, E_BALANCE);
            return;
          }
          n = emit(cp, N_BALANCE);
          n->c = uc(p[2]);
          n->d = uc(p[3]);
          cp->p += 4;
          continue;
        }
        if (p[1] == 'f') {
          const char *q = p + 2, *close;
          if (q >= cp->end || *q != '[') {
            error_node(cp, E_FRONTIER);
            return;
          }
          if (!(close = bracket_end(q, cp->end))) {
            error_node(cp, E_BRACKET);
            return;
          }
          charset *set = new_set(cp, n = emit(cp, N_FRONTIER));
          if (set) bracket_fill(cp->b, set, q, close);
          cp->p = close + 1;
          continue;
        }
        if (isdigit(uc(p[1]))) {
          int l = p[1] - '1';
          n = emit(cp, N_BACKREF);
          n->c = uc(p[1]);
          n->d = l >= 0 && l < cp->ncaps && cp->closed[l];
          cp->p += 2;
          continue;
        }
        break;
    }
    if (!single_item(cp)) return;
  }
  emit(cp, N_END);
}

static void compiler_init(compiler *cp, budget *b, const char *p, size_t lp, program *out,
                          size_t max_nodes, size_t max_sets) {
  cp->b = b;
  cp->p = p;
  cp->end = p + lp;
  cp->out = out;
  cp->max_nodes = max_nodes;
  cp->max_sets = max_sets;
  cp->nnodes = cp->nsets = 0;
  cp->ncaps = cp->nopen = 0;
}

/* Compiles p[0..lp) into *pr: into the caller's small arrays when they are given and it fits,
 * else into a new userdata pushed on the stack, after `extra` bytes for the caller (returned;
 * NULL when nothing was pushed). */
static void *prepare(budget *b, const char *p, size_t lp, program *pr, node *small_nodes,
                     charset *small_sets, size_t extra) {
  compiler cp;
  pr->nodes = small_nodes;
  pr->sets = small_sets;
  compiler_init(&cp, b, p, lp, small_nodes ? pr : NULL, SMALL_NODES, SMALL_SETS);
  compile(&cp);
  if (cp.out) { /* it fit */
    pr->ncaps = cp.ncaps;
    return NULL;
  }
  size_t nnodes = cp.nnodes, nsets = cp.nsets;
  void *ud = lua_newuserdatauv(b->L, extra + nsets * sizeof(charset) + nnodes * sizeof(node), 0);
  pr->sets = (charset *)((char *)ud + extra);
  pr->nodes = (node *)(pr->sets + nsets);
  compiler_init(&cp, b, p, lp, pr, nnodes, nsets);
  compile(&cp);
  pr->ncaps = cp.ncaps;
  return ud;
}

/* ---- matching ---- */

#define CAP_OPEN     (-1)
#define CAP_POSITION (-2)

typedef struct capture {
  const char *init;
  ptrdiff_t len; /* or CAP_OPEN, CAP_POSITION */
} capture;

/* Captures are not undone when a choice fails: the nodes a retry walks set them again before
 * anything reads them, since every path to the end walks every node after the choice. */
typedef struct matcher {
  budget b;
  const char *src, *end;
  const program *pr;
  int depth; /* open choices */
  capture caps[MAX_CAPTURES];
} matcher;

/* The captures are left alone: a match writes each before anything reads it. */
static void matcher_init(matcher *m, lua_State *L, int shared_up, const char *s, size_t ls) {
  m->b = budget_of(L, shared_up);
  m->src = s;
  m->end = s + ls;
  m->pr = NULL;
  m->depth = 0;
}

/* A program compiled for one call of find, match or gsub: in these arrays when it is small,
 * else in a userdata prepare() pushed. Lives as long as the call. */
typedef struct call_program {
  node nodes[SMALL_NODES];
  charset sets[SMALL_SETS];
  program pr;
} call_program;

/* Compiles p[0..lp) for `m` into *cp, without a leading '^': returns 1 when there was one. */
static int compile_anchored(matcher *m, const char *p, size_t lp, call_program *cp) {
  int anchored = lp > 0 && *p == '^';
  prepare(&m->b, p + anchored, lp - (size_t)anchored, &cp->pr, cp->nodes, cp->sets, 0);
  m->pr = &cp->pr;
  return anchored;
}

static inline int one(const matcher *m, const node *n, const char *s) {
  if (s >= m->end) return 0;
  return n->kind == N_CHAR ? uc(*s) == n->c : set_has(&m->pr->sets[n->arg], uc(*s));
}

static const char *walk(matcher *m, const char *s, const node *n);

/* Tries the rest of the pattern from n at s: a choice the caller may undo. */
static const char *try_rest(matcher *m, const char *s, const node *n) {
  if (m->depth >= MAX_DEPTH) luaL_error(m->b.L, "pattern too complex");
  m->depth++;
  s = walk(m, s, n);
  m->depth--;
  return s;
}

/* %bxy at s: from an x to the y that balances it. */
static const char *balance(matcher *m, const char *s, const node *n) {
  if (s >= m->end || uc(*s) != n->c) return NULL;
  size_t depth = 1;
  while (++s < m->end) {
    take(&m->b, 1);
    if (uc(*s) == n->d) { /* the closing byte first: %b"" spans one quoted string */
      if (--depth == 0) return s + 1;
    } else if (uc(*s) == n->c) {
      depth++;
    }
  }
  return NULL;
}

static const char *backref(matcher *m, const char *s, const node *n) {
  int l = n->c - '1';
  if (!n->d) luaL_error(m->b.L, "invalid capture index %%%d", l + 1);
  const capture *c = &m->caps[l];
  if (c->len == CAP_POSITION) return NULL; /* as in Lua: a position never matches */
  size_t len = (size_t)c->len;
  take(&m->b, len / 16);
  if ((size_t)(m->end - s) < len || memcmp(c->init, s, len) != 0) return NULL;
  return s + len;
}

/* Matches nodes from n at s: the end of the match, or NULL. */
static const char *walk(matcher *m, const char *s, const node *n) {
  for (;; n++) {
    take(&m->b, 1);
    switch (n->kind) {
      case N_END:
        return s;
      case N_CHAR:
      case N_SET:
        switch (n->quant) {
          case Q_ONE:
            if (!one(m, n, s)) return NULL;
            s++;
            break;
          case Q_OPT:
            if (one(m, n, s)) {
              const char *r = try_rest(m, s + 1, n + 1);
              if (r) return r;
            }
            break; /* without it */
          case Q_STAR:
          case Q_PLUS: {
            size_t most = 0, least = n->quant == Q_PLUS;
            while (one(m, n, s + most)) {
              most++;
              take(&m->b, 1);
            }
            for (size_t i = most; i + 1 > least; i--) { /* the longest first */
              const char *r = try_rest(m, s + i, n + 1);
              if (r) return r;
            }
            return NULL;
          }
          case Q_LAZY:
            for (;;) { /* the shortest first */
              const char *r = try_rest(m, s, n + 1);
              if (r) return r;
              if (!one(m, n, s)) return NULL;
              s++;
            }
        }
        break;
      case N_OPEN:
        m->caps[n->arg].init = s;
        m->caps[n->arg].len = CAP_OPEN;
        break;
      case N_POSITION:
        m->caps[n->arg].init = s;
        m->caps[n->arg].len = CAP_POSITION;
        break;
      case N_CLOSE:
        m->caps[n->arg].len = s - m->caps[n->arg].init;
        break;
      case N_EOS:
        if (s != m->end) return NULL;
        break;
      case N_BALANCE:
        if (!(s = balance(m, s, n))) return NULL;
        break;
      case N_FRONTIER: {
        const charset *set = &m->pr->sets[n->arg];
        int prev = s == m->src ? 0 : uc(s[-1]), cur = s < m->end ? uc(*s) : 0;
        if (set_has(set, prev) || !set_has(set, cur)) return NULL;
        break;
      }
      case N_BACKREF:
        if (!(s = backref(m, s, n))) return NULL;
        break;
      default: /* N_ERROR */
        luaL_error(m->b.L, "%s", errors[n->c]);
        return NULL;
    }
  }
}

/* Where capture i of the match s..e is: its bytes (returns 0), or a position (pushes it,
 * returns 1). Without captures, capture 0 is the whole match. */
static int capture_span(matcher *m, int i, const char *s, const char *e, const char **at,
                        size_t *len) {
  if (i >= m->pr->ncaps) {
    if (i != 0) luaL_error(m->b.L, "invalid capture index %%%d", i + 1);
    *at = s;
    *len = (size_t)(e - s);
    return 0;
  }
  const capture *c = &m->caps[i];
  if (c->len == CAP_OPEN) luaL_error(m->b.L, "unfinished capture");
  if (c->len == CAP_POSITION) {
    lua_pushinteger(m->b.L, c->init - m->src + 1);
    return 1;
  }
  *at = c->init;
  *len = (size_t)c->len;
  return 0;
}

static void push_capture(matcher *m, int i, const char *s, const char *e) {
  const char *at;
  size_t len;
  if (!capture_span(m, i, s, e, &at, &len)) lua_pushlstring(m->b.L, at, len);
}

/* Pushes the captures (the whole match when there are none and s is not NULL). */
static int push_captures(matcher *m, const char *s, const char *e) {
  int n = m->pr->ncaps == 0 && s ? 1 : m->pr->ncaps;
  luaL_checkstack(m->b.L, n, "too many captures");
  for (int i = 0; i < n; i++)
    push_capture(m, i, s, e);
  return n;
}

/* ---- the library functions ---- */

/* The 0-based start for a 1-based init, negative from the end; past ls when init is. */
static size_t start_of(lua_Integer init, size_t ls) {
  if (init > 0) return (size_t)init - 1;
  if (init == 0 || init < -(lua_Integer)ls) return 0;
  return (size_t)((lua_Integer)ls + init);
}

/* Whether p has none of the bytes that make a pattern more than its text. */
static int is_plain(const char *p, size_t lp) {
  for (size_t i = 0; i < lp; i++)
    if (memchr("^$*+?.([%-", p[i], 10)) return 0;
  return 1;
}

/* The first p[0..lp) in s[0..ls), or NULL; each candidate costs about its comparison. */
static const char *plain_find(budget *b, const char *s, size_t ls, const char *p, size_t lp) {
  if (lp == 0) return s;
  if (lp > ls) return NULL;
  const char *at = s, *last = s + (ls - lp);
  while (at <= last) {
    const char *hit = memchr(at, p[0], (size_t)(last - at) + 1);
    if (!hit) break;
    take(b, 1 + (size_t)(hit - at) / 16 + lp / 16);
    if (memcmp(hit + 1, p + 1, lp - 1) == 0) return hit;
    at = hit + 1;
  }
  return NULL;
}

static int find_or_match(lua_State *L, int find) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_of(luaL_optinteger(L, 3, 1), ls);
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  matcher m;
  matcher_init(&m, L, 1, s, ls);
  if (find && (lua_toboolean(L, 4) || is_plain(p, lp))) {
    const char *at = plain_find(&m.b, s + init, ls - init, p, lp);
    pay(&m.b);
    if (!at) {
      luaL_pushfail(L);
      return 1;
    }
    lua_pushinteger(L, at - s + 1);
    lua_pushinteger(L, (lua_Integer)(at - s) + (lua_Integer)lp);
    return 2;
  }
  call_program cp;
  int anchored = compile_anchored(&m, p, lp, &cp);
  for (const char *at = s + init;; at++) {
    const char *e = walk(&m, at, cp.pr.nodes);
    if (e) {
      pay(&m.b);
      if (!find) return push_captures(&m, at, e);
      lua_pushinteger(L, at - s + 1);
      lua_pushinteger(L, e - s);
      return push_captures(&m, NULL, NULL) + 2;
    }
    if (anchored || at >= m.end) break;
  }
  pay(&m.b);
  luaL_pushfail(L);
  return 1;
}

static int str_find(lua_State *L) {
  return find_or_match(L, 1);
}

static int str_match(lua_State *L) {
  return find_or_match(L, 0);
}

/* A gmatch iterator's state; its program follows it in the same userdata. */
typedef struct gmatch_state {
  size_t next; /* offset where the next search starts */
  size_t last; /* end of the last match (an empty match there does not count), or none */
  program pr;
} gmatch_state;

#define NO_MATCH ((size_t)-1)

/* Upvalues: the subject, the pattern, the state, the shared. */
static int gmatch_next(lua_State *L) {
  size_t ls;
  const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
  gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
  matcher m;
  matcher_init(&m, L, 4, s, ls);
  m.pr = &g->pr;
  for (size_t at = g->next; at <= ls; at++) {
    const char *e = walk(&m, s + at, g->pr.nodes);
    if (e && (size_t)(e - s) != g->last) {
      g->next = g->last = (size_t)(e - s);
      pay(&m.b);
      return push_captures(&m, s + at, e);
    }
  }
  g->next = ls + 1;
  pay(&m.b);
  return 0;
}

/* In gmatch a leading '^' is an ordinary byte, as in Lua 5.4. */
static int str_gmatch(lua_State *L) {
  size_t ls, lp;
  luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_of(luaL_optinteger(L, 3, 1), ls);
  lua_settop(L, 2);
  budget b = budget_of(L, 1);
  program pr;
  gmatch_state *g = prepare(&b, p, lp, &pr, NULL, NULL, sizeof(gmatch_state));
  pay(&b);
  g->pr = pr;
  g->next = init > ls ? ls + 1 : init;
  g->last = NO_MATCH;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushcclosure(L, gmatch_next, 4);
  return 1;
}

/* Appends the replacement template (argument 3) for the match s..e: %0 the match, %1-%9 a
 * capture, %% a '%'. */
static void add_template(matcher *m, luaL_Buffer *buf, const char *s, const char *e) {
  lua_State *L = m->b.L;
  size_t l;
  const char *r = lua_tolstring(L, 3, &l), *end = r + l;
  const char *pct;
  while ((pct = memchr(r, '%', (size_t)(end - r))) != NULL) {
    luaL_addlstring(buf, r, (size_t)(pct - r));
    char c = pct + 1 < end ? pct[1] : '\0';
    if (c == '%') {
      luaL_addchar(buf, '%');
    } else if (c == '0') {
      luaL_addlstring(buf, s, (size_t)(e - s));
    } else if (isdigit(uc(c))) {
      const char *at;
      size_t len;
      if (capture_span(m, c - '1', s, e, &at, &len))
        luaL_addvalue(buf);
      else
        luaL_addlstring(buf, at, len);
    } else {
      luaL_error(L, "invalid use of '%c' in replacement string", '%');
    }
    r = pct + 2;
    take(&m->b, 1);
  }
  luaL_addlstring(buf, r, (size_t)(end - r));
}

/* Appends the replacement for the match s..e; returns whether it differs from the match. */
static int add_replacement(matcher *m, luaL_Buffer *buf, const char *s, const char *e, int tr) {
  lua_State *L = m->b.L;
  if (tr == LUA_TFUNCTION || tr == LUA_TTABLE) take(&m->b, CALL_COST);
  if (tr == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    int n = push_captures(m, s, e);
    lua_call(L, n, 1);
  } else if (tr == LUA_TTABLE) {
    push_capture(m, 0, s, e);
    lua_gettable(L, 3);
  } else {
    add_template(m, buf, s, e);
    return 1;
  }
  if (!lua_toboolean(L, -1)) { /* nil or false: keep the match */
    lua_pop(L, 1);
    luaL_addlstring(buf, s, (size_t)(e - s));
    return 0;
  }
  if (!lua_isstring(L, -1))
    return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(buf);
  return 1;
}

static int str_gsub(lua_State *L) {
  size_t ls, lp;
  const char *src = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  int tr = lua_type(L, 3);
  lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
  luaL_argexpected(
      L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
      "string/function/table");
  lua_settop(L, 4); /* what the program may push goes above the arguments */
  matcher m;
  matcher_init(&m, L, 1, src, ls);
  call_program cp;
  int anchored = compile_anchored(&m, p, lp, &cp);
  luaL_Buffer buf;
  luaL_buffinit(L, &buf);
  const char *at = src, *last = NULL;
  lua_Integer n = 0;
  int changed = 0;
  while (n < max) {
    const char *e = walk(&m, at, cp.pr.nodes);
    if (e && e != last) {
      n++;
      changed |= add_replacement(&m, &buf, at, e, tr);
      at = last = e;
    } else if (at < m.end) {
      luaL_addchar(&buf, *at++);
    } else {
      break;
    }
    if (anchored) break;
  }
  pay(&m.b);
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    luaL_addlstring(&buf, at, (size_t)(m.end - at));
    luaL_pushresult(&buf);
  }
  lua_pushinteger(L, n);
  return 2;
}

void spine_lpattern_register(lua_State *L, int idx, spine_lpattern_charge charge) {
  static const luaL_Reg fns[] = {
      {"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch},
      {"gsub", str_gsub}, {NULL, NULL},
  };
  lua_pushvalue(L, idx);
  shared *lib = lua_newuserdatauv(L, sizeof *lib, 0);
  lib->charge = charge;
  memset(lib->classes, 0, sizeof lib->classes);
  for (size_t i = 0; i < NCLASSES; i++)
    for (int c = 0; c < 256; c++) {
      charset *s = &lib->classes[2 * i + !class_tests[i](c)];
      set_add(s, c);
    }
  luaL_setfuncs(L, fns, 1);
  lua_pop(L, 1);
}
