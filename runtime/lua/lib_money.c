/* spine.money (lib_money.h): integer cents in, integer cents (or text) out. A percentage is
 * read as a whole number of ten-thousandths of a percent, so 7.25 % of an amount is exact
 * integer arithmetic and only the one rounding at the end (to the even cent) remains. */
#include "lib_money.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lerror.h"

#define PCT_SCALE 10000 /* a percentage's four decimals */

static int bad(lua_State *L, const char *fn, const char *name, const char *what) {
  return spine_lerror_raise(L, "invalid_argument", "bad_argument", "%s: %s: %s", fn, name, what);
}

int spine_lib_money_percent(int64_t cents, double pct, int64_t *out) {
  if (!(fabs(pct) <= 1e6)) return -1;
  double scaled = pct * PCT_SCALE;
  int64_t p = (int64_t)llround(scaled);
  if (fabs(scaled - (double)p) > 1e-6) return -1; /* more than four decimals */
  int64_t num;
  const int64_t den = 100LL * PCT_SCALE;
  if (__builtin_mul_overflow(cents, p, &num)) return -1;
  int64_t q = num / den, r = num % den;
  if (r < 0) q--, r += den; /* floor: 0 <= r < den */
  if (2 * r > den || (2 * r == den && q % 2 != 0)) q++;
  *out = q;
  return 0;
}

void spine_lib_money_format(int64_t cents, const char *currency, char out[48]) {
  /* Unsigned, so that the most negative amount has a magnitude too. */
  uint64_t a = cents < 0 ? 0 - (uint64_t)cents : (uint64_t)cents;
  char whole[40];
  int n = snprintf(whole, sizeof whole, "%llu", (unsigned long long)(a / 100));
  char grouped[40];
  int g = 0;
  for (int i = 0; i < n; i++) {
    if (i && (n - i) % 3 == 0) grouped[g++] = '.';
    grouped[g++] = whole[i];
  }
  grouped[g] = '\0';
  const char *unit = !strcmp(currency, "EUR") ? "\xe2\x82\xac" : currency; /* € in UTF-8 */
  snprintf(out, 48, "%s%s,%02u %.3s", cents < 0 ? "-" : "", grouped, (unsigned)(a % 100), unit);
}

static int64_t cents_arg(lua_State *L, int arg, const char *fn, const char *name) {
  int ok = 0;
  lua_Integer c = lua_type(L, arg) == LUA_TNUMBER ? lua_tointegerx(L, arg, &ok) : 0;
  if (!ok) bad(L, fn, name, "not a whole number of cents");
  return c;
}

/* money.sum(amounts): the sum of a list of cents. */
static int money_sum(lua_State *L) {
  if (lua_type(L, 1) != LUA_TTABLE) return bad(L, "money.sum", "amounts", "not a list of cents");
  lua_Integer n = luaL_len(L, 1);
  int64_t total = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    char name[40];
    snprintf(name, sizeof name, "amounts[%lld]", (long long)i);
    lua_rawgeti(L, 1, i);
    int64_t c = cents_arg(L, -1, "money.sum", name);
    lua_pop(L, 1);
    if (__builtin_add_overflow(total, c, &total)) return bad(L, "money.sum", name, "sum too large");
  }
  lua_pushinteger(L, total);
  return 1;
}

/* money.percent(cents, pct): pct % of cents, half to the even cent. */
static int money_percent(lua_State *L) {
  int64_t cents = cents_arg(L, 1, "money.percent", "cents"), out;
  if (lua_type(L, 2) != LUA_TNUMBER) return bad(L, "money.percent", "pct", "not a number");
  if (spine_lib_money_percent(cents, lua_tonumber(L, 2), &out))
    return bad(L, "money.percent", "pct", "more than four decimals, or the amount out of range");
  lua_pushinteger(L, out);
  return 1;
}

/* money.format(cents, currency?): "12,34 €" (EUR, the default) or "12,34 USD". */
static int money_format(lua_State *L) {
  int64_t cents = cents_arg(L, 1, "money.format", "cents");
  const char *cur = "EUR";
  if (!lua_isnoneornil(L, 2)) {
    cur = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
    int ok = strlen(cur) == 3;
    for (int i = 0; ok && i < 3; i++)
      ok = cur[i] >= 'A' && cur[i] <= 'Z';
    if (!ok) return bad(L, "money.format", "currency", "not an ISO 4217 code (\"EUR\")");
  }
  char out[48];
  spine_lib_money_format(cents, cur, out);
  lua_pushstring(L, out);
  return 1;
}

int spine_lib_money_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"sum", money_sum},
      {"percent", money_percent},
      {"format", money_format},
      {NULL, NULL},
  };
  luaL_newlib(L, fns);
  return 1;
}
