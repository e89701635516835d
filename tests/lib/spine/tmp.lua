-- Leaves /tmp as a spec found it: every name os.tmpname gives in this Lua state — and the files
-- and folders a spec makes from one, NAME.<anything> (serve logs, manifest folders) — is
-- removed when the state closes (busted closes it at exit). Required by spine_test and
-- spine.testing; installs itself once per state.
if rawget(os, "spine_tmp_reaper") then return true end

local made, real = {}, os.tmpname

os.tmpname = function()
  local name = real()
  made[#made + 1] = name
  return name
end

-- names from os.tmpname are /tmp/lua_XXXXXX: letters and digits, safe in single quotes
rawset(os, "spine_tmp_reaper", setmetatable({}, { __gc = function()
  for i = 1, #made, 64 do
    local words = {}
    for k = i, math.min(i + 63, #made) do
      local n = made[k]
      if n:match("^/tmp/lua_%w+$") then words[#words + 1] = "'" .. n .. "' '" .. n .. "'.*" end
    end
    if #words > 0 then os.execute("rm -rf " .. table.concat(words, " ") .. " 2>/dev/null") end
  end
end }))
return true
