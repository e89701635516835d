-- The editor annotations (types/spine.lua) cover every ctx function the engine registers,
-- and name none it lacks: checked against runtime/ctx.c and a running playbook.
local T = require("spine_test")

local read = T.source

describe("types/spine.lua", function()
  it("annotates exactly the functions ctx has", function()
    local annotated, registered = {}, {}
    for name in read("types/spine.lua"):gmatch("\nfunction ctx%.([%w_]+)%(") do
      annotated[name] = true
    end
    local fns = read("runtime/ctx.c"):match("luaL_Reg fns%[%] = {(.-)},%s*{NULL")
    assert.is_string(fns, "cannot find the ctx function table in runtime/ctx.c")
    for name in fns:gmatch('{"([%w_]+)",') do registered[name] = true end
    assert.are.same(registered, annotated)

    -- and a playbook sees each of them as a function
    local names = {}
    for name in pairs(annotated) do names[#names + 1] = ("%q"):format(name) end
    table.sort(names)
    local path = os.tmpname() .. ".lua"
    local f = assert(io.open(path, "wb"))
    f:write("return { name = 'types_check', run = function(ctx)\n" ..
            "  local missing = {}\n" ..
            "  for _, n in ipairs({" .. table.concat(names, ",") .. "}) do\n" ..
            "    if type(ctx[n]) ~= 'function' then missing[#missing + 1] = n end\n" ..
            "  end\n" ..
            "  return { missing = #missing }\nend }\n")
    f:close()
    local code, wf, err = T.spine_json(T.newdb("spec_types"), { "run", path })
    os.remove(path)
    assert.are.equal(0, code, err)
    assert.are.equal(0, wf.result.missing)
  end)
end)
