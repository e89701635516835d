-- The editor annotations (types/*.lua, LuaLS) say what the engine does: every ctx and p
-- function the C code registers is annotated and no other, the adapter and HTTP tables have
-- the fields C reads and writes, and types/intents.lua is `spine intents --luals`, with
-- result types that real results fit. Checked against the C sources and a running engine
-- (no language server is needed).
local T = require("spine_test")
local L = require("lifecycle_test")

local read = T.source

-- The schema types of intents/intent_args.h; any other type is an enumeration "a|b" or a value.
local TYPES = { id = true, string = true, integer = true, cents = true, date = true, time = true,
                email = true, currency = true, address = true, object = true, list = true }

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- Names matched by `pattern` in `text`, as a set.
local function matches(text, pattern)
  local s = {}
  for name in text:gmatch(pattern) do s[name] = true end
  return s
end

-- The body of C function `name` in `src` (up to the first "\n}\n").
local function c_function(src, name)
  local body = src:match("\n[%w_ %*]-[ %*]" .. name .. "%(.-\n}\n")
  assert.is_string(body, "cannot find " .. name .. "() in the C source")
  return body
end

-- The fields of LuaLS class `class` in `text`, as a set.
local function class_fields(text, class)
  local block = text:match("%-%-%-@class " .. class .. "%f[^%w_][^\n]*\n(.-)\n[^%-]")
            or text:match("%-%-%-@class " .. class .. "%f[^%w_][^\n]*\n(.*)$")
  assert.is_string(block, "no ---@class " .. class)
  return matches(block, "%-%-%-@field ([%w_]+)%??%s")
end

-- Writes `source` to a new temporary file; returns its path.
local function temp_file(source, suffix)
  local path = os.tmpname() .. (suffix or "")
  local f = assert(io.open(path, "wb"))
  f:write(source)
  f:close()
  return path
end

local function lua_list(names)
  local quoted = {}
  for _, n in ipairs(names) do quoted[#quoted + 1] = ("%q"):format(n) end
  return "{" .. table.concat(quoted, ",") .. "}"
end

describe("types/spine.lua and types/intents.lua", function()
  it("annotate exactly the functions ctx has", function()
    local annotated, registered = {}, {}
    for _, file in ipairs({ "types/spine.lua", "types/intents.lua" }) do
      for name in read(file):gmatch("\nfunction ctx%.([%w_]+)%(") do
        assert.is_nil(annotated[name], "ctx." .. name .. " is annotated twice")
        annotated[name] = true
      end
    end
    local fns = read("runtime/engine/ctx.c"):match("luaL_Reg fns%[%] = {(.-)},%s*{NULL")
    assert.is_string(fns, "cannot find the ctx function table in runtime/engine/ctx.c")
    for name in fns:gmatch('{"([%w_]+)",') do registered[name] = true end
    assert.are.same(registered, annotated)

    -- and a playbook sees each of them as a function
    local path = temp_file("return { name = 'types_check', run = function(ctx)\n" ..
            "  local missing = {}\n" ..
            "  for _, n in ipairs(" .. lua_list(keys(annotated)) .. ") do\n" ..
            "    if type(ctx[n]) ~= 'function' then missing[#missing + 1] = n end\n" ..
            "  end\n" ..
            "  return { missing = #missing }\nend }\n", ".lua")
    local code, wf, err = T.spine_json(T.newdb("spec_types"), { "run", path })
    os.remove(path)
    assert.are.equal(0, code, err)
    assert.are.equal(0, wf.result.missing)
  end)

  it("annotate exactly the functions of spine.time and spine.money", function()
    for _, lib in ipairs({ { "time", "runtime/lua/lib_time.c" },
                           { "money", "runtime/lua/lib_money.c" } }) do
      local annotated, registered = {}, {}
      for name in read("types/spine.lua"):gmatch("\nfunction " .. lib[1] .. "%.([%w_]+)%(") do
        annotated[name] = true
      end
      local fns = read(lib[2]):match("luaL_Reg fns%[%] = {(.-)},%s*{NULL")
      assert.is_string(fns, "cannot find the function table in " .. lib[2])
      for name in fns:gmatch('{"([%w_]+)",') do registered[name] = true end
      assert.are.same(registered, annotated, "spine." .. lib[1])
    end
    -- and a playbook sees them
    local path = temp_file("return { name = 'types_lib', run = function()\n" ..
            "  return { spine.time.add_days('2026-12-31', 1), spine.money.format(1234) }\n" ..
            "end }\n", ".lua")
    local code, wf, err = T.spine_json(T.newdb("spec_types_lib"), { "run", path })
    os.remove(path)
    assert.are.equal(0, code, err)
    assert.are.same({ "2027-01-01", "12,34 €" }, wf.result)
  end)

  it("annotate every fact ctx answers", function()
    local facts = matches(c_function(read("runtime/engine/ctx.c"), "ctx_index"),
                          '!strcmp%(key, "([%w_]+)"%)')
    assert.is_true(facts.id and facts.trace_id, "cannot read the facts from ctx_index()")
    local fields = class_fields(read("types/spine.lua"), "SpineCtx")
    for name in pairs(facts) do assert.is_true(fields[name], "ctx." .. name .. " is not annotated") end
  end)
end)

describe(".luarc.json", function()
  it("points the Lua language server at types/ for Lua 5.4", function()
    local rc = T.json.decode(read(".luarc.json"))
    assert.are.equal("Lua 5.4", rc["runtime.version"])
    assert.are.same({ "types" }, rc["workspace.library"])
    for _, file in ipairs({ "spine", "intents", "provider" }) do
      assert.matches("^%-%-%-@meta\n", read("types/" .. file .. ".lua"))
    end
  end)
end)

describe("types/intents.lua", function()
  it("is `spine intents --luals`", function()
    local code, out = T.spine("unused", { "intents", "--luals" }, nil, T.product_bin)
    assert.are.equal(0, code)
    assert.are.equal(out, read("types/intents.lua"),
                     "types/intents.lua is stale: run `build/spine intents --luals > types/intents.lua`")
  end)

  it("has an argument class, a result class and an overload per intent", function()
    local code, out = T.spine_json("unused", { "intents" }, nil, T.product_bin)
    assert.are.equal(0, code)
    local text = read("types/intents.lua")
    assert.is_true(#out.intents >= 17)
    for _, i in ipairs(out.intents) do
      local declared = {}
      for _, a in ipairs(i.args) do declared[a.name] = true end
      assert.are.same(declared, class_fields(text, i.name .. "Args"), i.name .. "Args")
      assert.is_table(i.result, i.name .. " registers no result")
      declared = {}
      for _, r in ipairs(i.result) do declared[r.name] = true end
      assert.are.same(declared, class_fields(text, i.name .. "Result"), i.name .. "Result")
      local overload = ('---@overload fun(name: "%s", args: %sArgs): %sResult\n')
                       :format(i.name, i.name, i.name)
      assert.is_truthy(text:find(overload, 1, true), "no overload for " .. i.name)
    end
  end)

  it("declares result fields that the intents' real results fit", function()
    local _, catalog = T.spine_json("unused", { "intents" }, nil, T.product_bin)
    local schema = {}
    for _, i in ipairs(catalog.intents) do schema[i.name] = i.result end
    local seen = {}
    local url = T.newdb("spec_types_results")
    local function check(name, result)
      seen[name] = true
      local declared = {}
      for _, f in ipairs(schema[name]) do
        declared[f.name] = f
        local v = result[f.name]
        if v == T.json.null then v = nil end
        if f.required then assert.is_not_nil(v, name .. " returned no " .. f.name) end
        if v ~= nil and not TYPES[f.type] then -- an enumeration, or one value
          assert.is_truthy(("|" .. f.type .. "|"):find("|" .. v .. "|", 1, true),
                           ("%s.%s = %s is not one of %s"):format(name, f.name, v, f.type))
        end
      end
      for k in pairs(result) do
        assert.is_table(declared[k], name .. " returned " .. k .. ", which its result lacks")
      end
      return result
    end
    local function ok(name, args) return check(name, L.ok(url, name, args)) end

    local ids = L.contract(url, "ty")
    -- L.contract registered these; the same arguments again return the same results
    check("RegisterCustomer", L.ok(url, "RegisterCustomer", { customer_id = ids.customer,
      name = "Erika Mustermann", email = "ty@example.org" }))
    check("CreateContract", L.ok(url, "CreateContract", { customer_id = ids.customer,
      provider = "acme_energy", tariff = "green", meter_point_id = ids.meter_point,
      contract_id = ids.contract }))
    ok("RegisterProvider", { provider = "acme_energy", display_name = "ACME Energy" })
    ok("RegisterMeterPoint", { customer_id = ids.customer, meter_id = "ty-meter",
                               commodity = "electricity", meter_point_id = ids.meter_point })
    ok("RequestActivation", { contract_id = ids.contract })
    ok("ConfirmActivation", { contract_id = ids.contract, activation_date = "2026-12-01" })
    ok("GetContract", { contract_id = ids.contract })
    ok("ReportPriceIncrease", { contract_id = ids.contract, new_price_cents = 3200, unit = "kWh",
                                effective_date = "2027-03-01", notice_date = "2027-01-15" })
    ok("RequestSwitch", { contract_id = ids.contract, tariff = "cheap", provider = "cheap_power" })
    ok("CancelSwitch", { contract_id = ids.contract, reason = "changed mind" })
    ok("RequestSwitch", { contract_id = ids.contract, tariff = "cheap", provider = "cheap_power",
                          switch_date = "2027-02-01" })
    ok("ConfirmSwitch", { contract_id = ids.contract })
    local other = L.ok(url, "CreateContract", { customer_id = ids.customer,
                                                provider = "acme_energy", tariff = "grey" })
    ok("CancelActivation", { contract_id = other.contract_id, reason = "mistake" })
    local third = L.ok(url, "CreateContract", { customer_id = ids.customer,
                                                provider = "acme_energy", tariff = "blue" })
    L.ok(url, "RequestActivation", { contract_id = third.contract_id })
    L.ok(url, "ConfirmActivation", { contract_id = third.contract_id,
                                     activation_date = "2026-12-01" })
    ok("RequestTermination", { contract_id = third.contract_id, reason = "moving" })
    ok("ConfirmTermination", { contract_id = third.contract_id, termination_date = "2027-01-31" })
    ok("ApplyManualCredit", { customer_id = ids.customer, amount_cents = 500, reason = "goodwill" })
    local task = ok("CreateTask", { kind = "call_back", subject = ids.customer,
                                    data = { note = "x" } })
    ok("ResolveTask", { task_id = task.task_id, outcome = "done" })
    ok("GetTask", { task_id = task.task_id })
    ok("GetCustomer", { customer_id = ids.customer })
    ok("GetContract", { contract_id = ids.contract, as_of = "2100-01-01T00:00:00Z" })
    ok("ForgetCustomer", { customer_id = ids.customer, reason = "asked to" })
    ok("GetCustomer", { customer_id = ids.customer, as_of = "2100-01-01T00:00:00Z" })
    for name in pairs(schema) do assert.is_true(seen[name], name .. " was not exercised") end
  end)
end)

describe("types/provider.lua", function()
  local pctx = read("runtime/providers/pctx.c")
  local types = read("types/provider.lua")

  -- What spine_pctx_open and push_p give every p, read from runtime/providers/pctx.c.
  local function registered()
    local open = c_function(pctx, "spine_pctx_open")
    local p = matches(open:match("members%[%] = {(.-)};"), '{"([%w_]+)",')
    local verbs = matches(open:match("verbs%[%] = {(.-)};"), '{"([%w_]+)",')
    local email = matches(open:match("email%[%] = {(.-)};"), '{"([%w_]+)",')
    for name in c_function(pctx, "push_p"):gmatch('set_string%(L, "([%w_]+)"') do p[name] = true end
    for name in c_function(pctx, "push_p"):gmatch('lua_setfield%(L, %-2, "([%w_]+)"%)') do
      p[name] = true
    end
    return p, verbs, email
  end

  it("annotates exactly the members p has", function()
    local p, verbs, email = registered()
    assert.is_true(p.http and p.secret and p.config and p.idempotency_key, "cannot read pctx.c")
    local annotated = matches(types, "\nfunction p%.([%w_]+)%(")
    for name in pairs(class_fields(types, "SpineProviderContext")) do annotated[name] = true end
    assert.are.same(p, annotated)
    assert.are.same(verbs, matches(types, "\nfunction http%.([%w_]+)%("))
    assert.are.same(email, matches(types, "\nfunction email%.([%w_]+)%("))
  end)

  it("annotates the fields of the tables p's functions read and return", function()
    local function covers(class, names)
      local fields = class_fields(types, class)
      for name in pairs(names) do assert.is_true(fields[name], class .. " lacks " .. name) end
      assert.is_true(next(names) ~= nil, "nothing read for " .. class)
    end
    covers("SpineHttpResponse", matches(c_function(pctx, "http_k"),
                                        'lua_setfield%(L, %-2, "([%w_]+)"%)'))
    covers("SpineHttpOptions", matches(c_function(pctx, "p_http"),
                                       'lua_getfield%(L, 2, "([%w_]+)"%)'))
    local mail = c_function(pctx, "p_email_send")
    local mail_fields = matches(mail, 'string_field%(L, lines, "([%w_]+)"')
    for name in mail:gmatch('lua_getfield%(L, 1, "([%w_]+)"%)') do mail_fields[name] = true end
    covers("SpineEmailMessage", mail_fields)
    covers("SpineWebhookRequest", matches(c_function(pctx, "push_request"),
                                          'lua_setfield%(L, %-2, "([%w_]+)"%)'))
    -- push_error's own fields, and those spine_lerror_push gives every error (not the
    -- optional field, which only ctx's rejections carry)
    local err_fields = matches(c_function(pctx, "push_error"),
                               'lua_setfield%(L, %-2, "([%w_]+)"%)')
    for name in c_function(read("runtime/lua/lerror.c"), "spine_lerror_push")
                  :gmatch('\n  lua_setfield%(L, %-2, "([%w_]+)"%)') do
      err_fields[name] = true
    end
    assert.is_true(err_fields.kind and err_fields.details, "cannot read the error's fields")
    covers("SpineProviderError", err_fields)
    local actions = read("runtime/providers/webhook_actions.c")
    local action_fields = {}
    for list in actions:gmatch("_keys%[%] = {(.-)}") do
      for name in list:gmatch('"([%w_]+)"') do action_fields[name] = true end
    end
    covers("SpineWebhookAction", action_fields)
    local module = {}
    for name in c_function(read("runtime/providers/providers.c"), "check_adapter")
                  :gmatch('rawfield%(L, 1, "([%w_]+)"%)') do
      module[name] = true
    end
    covers("SpineAdapter", module)
  end)

  it("names only what an adapter really sees in p", function()
    local p, verbs, email = registered()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. T.q(dir)))
    local adapter = assert(io.open(dir .. "/introspect.lua", "wb"))
    adapter:write("local function missing(t, names, kind)\n" ..
      "  local out = {}\n" ..
      "  for _, n in ipairs(names) do\n" ..
      "    if t[n] == nil or (kind and type(t[n]) ~= kind) then out[#out + 1] = n end\n" ..
      "  end\n" ..
      "  return out\n" ..
      "end\n" ..
      "return { name = 'introspect', channels = { 'api' }, api = {\n" ..
      "  names = function(p)\n" ..
      "    return { p = missing(p, " .. lua_list(keys(p)) .. "),\n" ..
      "             http = missing(p.http, " .. lua_list(keys(verbs)) .. ", 'function'),\n" ..
      "             email = missing(p.email, " .. lua_list(keys(email)) .. ", 'function') }\n" ..
      "  end } }\n")
    adapter:close()
    local playbook = temp_file("return { name = 'types_p', run = function(ctx)\n" ..
      "  return ctx.provider('introspect', 'names', {}, { retry = { attempts = 1 } })\nend }\n",
      ".lua")
    local code, wf, err = T.spine_json(T.newdb("spec_types_p"), { "run", playbook, "--clock",
                                       "virtual" }, { SPINE_PROVIDERS = dir })
    os.remove(playbook)
    os.execute("rm -rf " .. T.q(dir))
    assert.are.equal(0, code, err)
    assert.are.same({ p = {}, http = {}, email = {} }, wf.result)
  end)
end)
