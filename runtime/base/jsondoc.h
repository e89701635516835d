/* A small JSON document tree that remembers the line of every value, for configuration files
 * (manifests) whose errors must name file, line and field. Strict: duplicate keys, trailing
 * commas, comments and NUL characters are refused. Owns its nodes; not for hot paths. */
#ifndef SPINE_JSONDOC_H
#define SPINE_JSONDOC_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

typedef enum {
  SPINE_JSONDOC_NULL,
  SPINE_JSONDOC_BOOL,
  SPINE_JSONDOC_NUMBER,
  SPINE_JSONDOC_STRING,
  SPINE_JSONDOC_ARRAY,
  SPINE_JSONDOC_OBJECT,
} spine_jsondoc_type;

/* One value. Read-only for callers; children of arrays and objects are a list in source order. */
typedef struct spine_jsondoc {
  spine_jsondoc_type type;
  int line;    /* 1-based line where the value starts */
  char *key;   /* member name when the value is in an object, else NULL */
  char *str;   /* STRING: the decoded text, NUL-terminated */
  double num;  /* NUMBER */
  int boolean; /* BOOL */
  int count;   /* ARRAY, OBJECT: number of children */
  struct spine_jsondoc *child, *next;
} spine_jsondoc;

/* Parses `len` bytes. Returns 0 and *out (free with spine_jsondoc_free), or SPINE_EINVAL with
 * e->msg saying what is wrong and *line the line of the error. Nesting is limited to 64. */
int spine_jsondoc_parse(const char *text, size_t len, spine_jsondoc **out, int *line, spine_err *e);
void spine_jsondoc_free(spine_jsondoc *doc);
/* The member `key` of an object, or NULL (also when `obj` is not an object). Borrowed. */
const spine_jsondoc *spine_jsondoc_get(const spine_jsondoc *obj, const char *key);
/* The string member `key` of `obj`, or `dflt` when it is absent or not a string. Borrowed. */
const char *spine_jsondoc_str(const spine_jsondoc *obj, const char *key, const char *dflt);
/* The number member `key` of `obj`, or `dflt` when it is absent or not a number. */
double spine_jsondoc_num(const spine_jsondoc *obj, const char *key, double dflt);
/* Appends `v` as compact JSON text (members in source order; numbers exact, shortest of
 * %.15g and %.17g). */
void spine_jsondoc_write(const spine_jsondoc *v, spine_buf *out);
/* "string", "number", ... for messages. */
const char *spine_jsondoc_type_name(spine_jsondoc_type t);

/* The pieces of string decoding the codec's parser shares. Reads the \uXXXX escape at `p` (at
 * the 'u'; `end` bounds the input), with its low surrogate when XXXX is a high one: returns the
 * code point and sets *next past the escape, or -1 with *next at the backslash. */
long spine_jsondoc_read_u(const char *p, const char *end, const char **next);
/* The length of the well-formed UTF-8 sequence at s[0..n) whose first byte is >= 0x80 (RFC
 * 3629: no overlong forms, no surrogates, nothing past U+10FFFF), or 0 when it is none. */
size_t spine_jsondoc_utf8_len(const unsigned char *s, size_t n);
/* Writes code point `cp` (0 to 0x10FFFF) as UTF-8 into o[4]; returns how many bytes. */
size_t spine_jsondoc_utf8(char o[4], long cp);
/* The byte a one-letter escape stands for (`esc` is the letter after the backslash: " \ / b f
 * n r t), or -1 for any other. */
int spine_jsondoc_unescape(int esc);

#endif
