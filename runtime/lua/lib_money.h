/* spine.money, the playbooks' money: amounts as integer cents (SPEC §5), summed, taken a
 * percentage of with banker's rounding, and written as people read them ("1.234,56 €"). No
 * floating-point amount ever comes out. Errors name the function and the argument. */
#ifndef SPINE_LIB_MONEY_H
#define SPINE_LIB_MONEY_H

#include <lua.h>
#include <stdint.h>

/* Pushes the table of spine.money's functions. */
int spine_lib_money_open(lua_State *L);

/* pct percent of `cents`, to the cent, a half to the even cent (banker's rounding). pct has at
 * most four decimals ("7.25", "19"). Returns 0, or -1 for a pct with more decimals or a result
 * out of range. */
int spine_lib_money_percent(int64_t cents, double pct, int64_t *out);
/* `cents` as "1.234,56 €" (EUR) or "1.234,56 USD" (another ISO 4217 code) into out[48]. */
void spine_lib_money_format(int64_t cents, const char *currency, char out[48]);

#endif
