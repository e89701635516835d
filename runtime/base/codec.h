/* Canonical JSON for Lua values: what steps record and replay feeds back.
 * Encoding is deterministic (object keys sorted bytewise), so equal values give equal text.
 * Owns nothing; never calls back into Lua code (no metamethods). */
#ifndef SPINE_CODEC_H
#define SPINE_CODEC_H

#include <lua.h>

#include "buf.h"
#include "err.h"

#define SPINE_CODEC_MAX_DEPTH 64

/* Appends the JSON text of the value at `idx` to `out`.
 * Tables with keys exactly 1..n encode as arrays (an empty table as {}); other tables need
 * string keys (numeric keys of non-arrays are refused); integers print as integers, floats with
 * "%.17g" (NaN and infinities are refused); nil encodes as null. Functions, userdata, threads,
 * cycles and depth over SPINE_CODEC_MAX_DEPTH are refused with SPINE_EINVAL, and e->field names
 * the path ("input.items[3].name"; the root is `root`). */
int spine_codec_encode(lua_State *L, int idx, const char *root, spine_buf *out, spine_err *e);
/* Strings must be well-formed UTF-8 (RFC 8259) and, for spine_codec_encode, whose text is
 * stored (jsonb holds no NUL), free of NUL bytes: a refusal names the value and the byte, so
 * that the value fails where it is made (a step's result, a provider's answer) rather than the
 * commit of the step that holds it. spine_codec_encode_json is for JSON sent elsewhere (an HTTP
 * body): a NUL is written \u0000. */
int spine_codec_encode_json(lua_State *L, int idx, const char *root, spine_buf *out, spine_err *e);

/* Pushes the Lua value of the JSON text (exactly `len` bytes; need not be NUL-terminated).
 * Objects and arrays become tables, null becomes nil (a null array element leaves a hole),
 * integral numbers without fraction/exponent become Lua integers when they fit.
 * On bad JSON pushes nothing and returns SPINE_EINVAL with e->msg naming the byte offset.
 * Limits: depth SPINE_CODEC_MAX_DEPTH. Uses lua_checkstack; may raise only on Lua OOM. */
int spine_codec_decode(lua_State *L, const char *json, size_t len, spine_err *e);

#endif
