/* lpattern.c against Lua's own string library: find, match, gmatch and gsub give the same
 * results and the same errors over a table of patterns and subjects; a pathological pattern
 * (or plain search) is stopped by the budget; the charges are about the work done. */
#include <lauxlib.h>
#include <lualib.h>

#include "lpattern.h"
#include "test.h"

/* Called with our functions in a table; returns the number of comparisons and a report of the
 * first mismatches ("" when none). */
static const char compare_lua[] =
    "local P = ...\n"
    "local subjects = {\n"
    "  '', 'a', 'b', 'abc', 'aaa', 'aaab', 'hello world', '  trim me  ', 'key=value; k2=v2',\n"
    "  'THE (quick) fox', '[[x]]', 'x = 10, y = 20', 'f(a(b)c)d', 'a.b.c', '\\0a\\0b', '12ab34',\n"
    "  '%d', '^$', '\\195\\169t\\195\\169', '\\n\\t x', 'a,b,,c', 'one two  three', '$100.00',\n"
    "  'a-b-c', '()', ']]', '%%', 'hello', '\"q\" and \"r\"', 'THE quick BROWN fox', 'xyxyx',\n"
    "  'aXbXXc', '  ', 'abcabcabc', '0x1F', '[a]', 'a\\0', 'ab12cd', 'z', 'zZ',\n"
    "}\n"
    "local patterns = {\n"
    "  '', 'a', 'b', '^a', 'a$', '^$', '.', '..', 'a*', 'a+', 'a-', 'a?', 'a-b', '.-b', 'x*',\n"
    "  '^(a*)(.-)$', '(a)(b)?', '%a+', '%A+', '%d+', '%D', '%s*', '%S+', '%w+', '%W', '%l+',\n"
    "  '%u+', '%p', '%c', '%x+', '%g+', '%X', '%G', '%P+', '%C', '%L', '%U', '[abc]', '[^abc]',\n"
    "  '[a-c]+', '[%a_]+', '[%d.]+', '[]]', '[^]]+', '[a-]', '[-a]', '[%]]', '[a%-z]+',\n"
    "  '[%a-z]', '[a-%d]', '[--/]', '[z-a]', '[\\0-\\31]', '[%z]', '()', '()a()', '(a)(b)(c)',\n"
    "  '((a)(b))', '(%w+)=(%w+)', '%b()', '%b[]', '%bxy', '%b\"\"', '%baa', '%f[%w]%w+', '%f[%W]',\n"
    "  '%f[%a]', '%f[^%z]', '%f[%l]%a', '(a)%1', '(%w)%1', '(.)%1', '(x)y%1', '^(%s*)(.-)(%s*)$',\n"
    "  '%.', '%%', '$', 'a$b', 'x*$', '^', '^^', '[', '[a', '[^', '%', 'a%', '(', ')', '(()',\n"
    "  'a)', '%b', '%ba', '%f', '%fa', '%f[a', '%1', '%0', '(a%1)', '()%1', '%2(a)', '%z', '%Z',\n"
    "  'a**', '*', '+', '-', '?', '[^%s]+', '.-', '.*', '(.-),', '%s+$', '^%s+', '[%w_]+',\n"
    "  '(h)(e)(l)(l)(o)', '%z+', '^a-$', 'a-$', '(a-)(a-)', '(a*)(a*)', '(a+)(a+)', 'a?a?a?',\n"
    "  '[%s%p]+', '[%S]', '%d%d?', '((.)%2)', '(%d)(%d)%2%1', '%$%d+%.%d%d', '%-', '%[(.-)%]',\n"
    "  '(%a+)%s*(%a*)', '.-$', '^.-', '(.?)(.?)', '%1(a)', 'b*a', 'ab-c?', '[^%a%d]', '[^%]]',\n"
    "  '.%f[%s]', '(()x())', 'a\\0', '\\0', '[\\0]', '%x%x', '%%d', '(%%)', '([%%%]])',\n"
    "  string.rep('()', 32), string.rep('()', 33), string.rep('(a)', 33), string.rep('a?', 20),\n"
    "  string.rep('[%a%d ]', 9), string.rep('.', 12), string.rep('%w?', 40), ('a'):rep(31) .. '%d',\n"
    "}\n"
    "local inits = {1, 2, -1, -3, 0, 3, 100, -100}\n"
    "local repls = {\n"
    "  '', 'x', '%0', '%1', '<%1>', '%%', '%2', '%', 'a%', '[%0]', '%a', '%1%1', 123, 4.5,\n"
    "  {a = 'A', hello = 'HI', ['1'] = 'one', b = 2, c = false, x = {}},\n"
    "  function(a) return a:upper() end, function() return nil end, function() return false end,\n"
    "  function(...) return select('#', ...) end, function() return {} end,\n"
    "  function(a, b) return b end, function(a) return #a end, true,\n"
    "}\n"
    "local function pack(...) return {n = select('#', ...), ...} end\n"
    "local function repr(v)\n"
    "  if type(v) == 'string' then return string.format('%q', v) end\n"
    "  return type(v) == 'function' and 'fn' or tostring(v)\n"
    "end\n"
    "-- errors from argument checks name the function as found: ours is not string.find\n"
    "local function show(r)\n"
    "  local parts = {}\n"
    "  for i = 1, r.n do\n"
    "    local v = r[i]\n"
    "    if i == 2 and r[1] == false and type(v) == 'string' then\n"
    "      v = v:gsub(\"to '[^']*'\", \"to '?'\")\n"
    "    end\n"
    "    parts[i] = type(v) .. ':' .. repr(v)\n"
    "  end\n"
    "  return table.concat(parts, ' ')\n"
    "end\n"
    "local function collect(gmatch, ...)\n"
    "  local out, it = {}, gmatch(...)\n"
    "  for _ = 1, 60 do\n"
    "    local r = pack(it())\n"
    "    if r.n == 0 or r[1] == nil then out[#out + 1] = 'end' break end\n"
    "    out[#out + 1] = show(r)\n"
    "  end\n"
    "  return table.concat(out, ' | ')\n"
    "end\n"
    "local count, bad = 0, {}\n"
    "local function check(what, ours, lua)\n"
    "  count = count + 1\n"
    "  if ours ~= lua and #bad < 12 then\n"
    "    bad[#bad + 1] = what .. '\\n    lua:  ' .. lua .. '\\n    ours: ' .. ours\n"
    "  end\n"
    "end\n"
    "local function both(name, ...)\n"
    "  local args = pack(...)\n"
    "  local what = {name}\n"
    "  for i = 1, args.n do what[#what + 1] = repr(args[i]) end\n"
    "  what = table.concat(what, ' ')\n"
    "  if name == 'gmatch' then\n"
    "    check(what, show(pack(pcall(collect, P.gmatch, ...))),\n"
    "          show(pack(pcall(collect, string.gmatch, ...))))\n"
    "  else\n"
    "    check(what, show(pack(pcall(P[name], ...))), show(pack(pcall(string[name], ...))))\n"
    "  end\n"
    "end\n"
    "for _, s in ipairs(subjects) do\n"
    "  for _, p in ipairs(patterns) do\n"
    "    both('find', s, p)\n"
    "    both('match', s, p)\n"
    "    both('gmatch', s, p)\n"
    "    both('find', s, p, 1, true)\n"
    "    for _, i in ipairs(inits) do\n"
    "      both('find', s, p, i)\n"
    "      both('match', s, p, i)\n"
    "      both('find', s, p, i, true)\n"
    "    end\n"
    "    both('gmatch', s, p, 2)\n"
    "    both('gmatch', s, p, -2)\n"
    "    for _, r in ipairs(repls) do both('gsub', s, p, r) end\n"
    "    for _, m in ipairs({0, 1, 2, -1}) do\n"
    "      both('gsub', s, p, '<%0>', m)\n"
    "      both('gsub', s, p, repls[16], m)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "-- arguments: numbers as strings, wrong types, a long subject under anchors\n"
    "local long = string.rep('ab', 500) .. 'c'\n"
    "both('find', 12345, 3)\n"
    "both('find', 12345, 23, 1, true)\n"
    "both('match', 3.5, '%d')\n"
    "both('gsub', 12345, 3, 9)\n"
    "both('gsub', 'abc', 'b', 1.5)\n"
    "both('find', nil, 'a')\n"
    "both('find', 'a', nil)\n"
    "both('find', 'a', 'a', 'x')\n"
    "both('find', 'a', 'a', 1.5)\n"
    "both('gsub', 'a', 'a')\n"
    "both('gsub', 'a', 'a', 'b', 'x')\n"
    "both('gmatch', {}, 'a')\n"
    "both('match', long, '^(ab)+c$')\n"
    "both('match', long, '^(.-)c$')\n"
    "both('find', long, 'c$')\n"
    "both('gsub', long, 'ab', '%0-', 100)\n"
    "both('gsub', long, '^ab', 'X')\n"
    "both('gmatch', long, '^ab')\n"
    "both('gmatch', '^ab^ab', '^ab')\n"
    "both('gsub', 'hello world', '(o)', {o = '0'})\n"
    "both('gsub', 'abc', '', '-')\n"
    "both('gsub', 'abc', '.-', '-')\n"
    "both('gsub', 'abc', 'b*', '-')\n"
    "both('gmatch', 'abc', 'b*')\n"
    "both('gmatch', 'abc', '()')\n"
    "both('find', 'a.b', '.', 1, true)\n"
    "both('find', 'a+b', '+', 1, 1)\n"
    "both('find', '', '', 1)\n"
    "both('find', '', '', 2)\n"
    "both('find', 'abc', '', 4)\n"
    "both('find', 'abc', '', 5)\n"
    "both('match', 'abc', '()', 4)\n"
    "both('gsub', 'abc', '%w', '%1%0')\n"
    "both('gsub', 'abc', '(%w)', '%2')\n"
    "both('gsub', 'abc', '(%w', 'x')\n"
    "both('gsub', 'abc', '(%w', function(c) return c end)\n"
    "both('gsub', 'abc', '(%w', {})\n"
    "both('gsub', 'abc', '()', '%1')\n"
    "both('gsub', 'abc', '()b', {[2] = 'two'})\n"
    "return count, table.concat(bad, '\\n')\n";

TEST_IMPL(lpattern_matches_lua) {
  lua_State *L = luaL_newstate();
  ASSERT(L != NULL);
  luaL_openlibs(L);
  ASSERT_EQ(luaL_loadbuffer(L, compare_lua, sizeof compare_lua - 1, "=compare"), LUA_OK);
  lua_newtable(L);
  spine_lpattern_register(L, -1, NULL);
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) TEST_FAIL_("compare: %s", lua_tostring(L, -1));
  lua_Integer count = lua_tointeger(L, -2);
  const char *bad = lua_tostring(L, -1);
  if (bad[0]) TEST_FAIL_("%lld comparisons, mismatches:\n%s", (long long)count, bad);
  ASSERT_GT(count, 100000);
  lua_close(L);
  return 0;
}

static int64_t spent, allowance;

static void count_steps(lua_State *L, int64_t steps) {
  spent += steps;
  if (spent > allowance) luaL_error(L, "budget exhausted");
}

/* Runs `src` with our functions as P; returns its error ("" when none) and the steps spent. */
static const char *run(lua_State *L, const char *src, int64_t budget) {
  static char msg[256];
  spent = 0;
  allowance = budget;
  ASSERT_EQ(luaL_loadstring(L, src), LUA_OK);
  lua_pushvalue(L, 1);
  int st = lua_pcall(L, 1, 0, 0);
  snprintf(msg, sizeof msg, "%s", st == LUA_OK ? "" : lua_tostring(L, -1));
  lua_settop(L, 1);
  return msg;
}

TEST_IMPL(lpattern_budget) {
  lua_State *L = luaL_newstate();
  ASSERT(L != NULL);
  luaL_openlibs(L);
  lua_newtable(L);
  spine_lpattern_register(L, 1, count_steps);

  /* Backtracking that would take hours stops once the budget is spent, in each function. */
  static const char *const bombs[] = {
      "local P = ... P.find(('a'):rep(1e5), '.-.-.-.-.-b')",
      "local P = ... P.match(('a'):rep(1e5), '.-.-.-.-.-b')",
      "local P = ... for _ in P.gmatch(('a'):rep(1e5), '.-.-.-.-.-b') do end",
      "local P = ... P.gsub(('a'):rep(1e5), '.-.-.-.-.-b', '')",
      "local P = ... P.find(('a'):rep(1e4), ('a*'):rep(20) .. 'b')",
      "local P = ... P.find(('a'):rep(2e5), ('a'):rep(1e5) .. 'b', 1, true)",
      "local P = ... P.find(('a'):rep(1e5), ('a'):rep(5e4) .. 'b')",
      "local P = ... P.find(('x'):rep(1e6), ('%a'):rep(1e5) .. 'y')",
      /* a C function called per match: each call costs as much as 16 steps */
      "local P = ... P.gsub(('a'):rep(1e6), '.', string.upper)",
      "local P = ... P.gsub(('a'):rep(1e6), '.', setmetatable({}, {__index = rawlen}))",
  };
  for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
    const char *err = run(L, bombs[i], 10 * 1000 * 1000);
    if (!strstr(err, "budget exhausted")) TEST_FAIL_("%s: \"%s\"", bombs[i], err);
    ASSERT_LE(spent, 10 * 1000 * 1000 + 100000); /* the last charge may be one big step */
  }

  /* Ordinary matches cost about the bytes they look at: a find over 1e5 bytes, some hundred
   * thousand steps; a small one a few. */
  ASSERT_STR_EQ(run(L, "local P = ... assert(P.find(('a'):rep(1e5) .. 'b', 'a*b') == 1)", 1000000),
                "");
  ASSERT_GE(spent, 100000);
  ASSERT_LE(spent, 400000);
  ASSERT_STR_EQ(run(L, "local P = ... assert(P.match('key=value', '(%w+)=(%w+)') == 'key')", 1000),
                "");
  ASSERT_GT(spent, 0);
  ASSERT_LE(spent, 1000);
  ASSERT_STR_EQ(run(L,
                    "local P = ... local n = 0 for w in P.gmatch('one two three', '%a+') do "
                    "n = n + 1 end assert(n == 3)",
                    1000),
                "");
  ASSERT_STR_EQ(run(L,
                    "local P = ... assert(P.gsub(('ab'):rep(1000), 'b', 'c') == ('ac'):rep(1000))",
                    100000),
                "");
  ASSERT_GE(spent, 2000);
  /* Deep nesting is refused before the C stack suffers. */
  ASSERT_STR_CONTAINS(run(L, "local P = ... P.find(('a'):rep(300), ('a?'):rep(300))", 1000000),
                      "pattern too complex");
  lua_close(L);
  return 0;
}
