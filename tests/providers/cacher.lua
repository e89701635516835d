-- An adapter that keeps a secret in its module state (what adapters must not do): `remember`
-- reads it, `reveal` and `reveal_error` hand it out later in simple forms without reading it.
local cached

local ABC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    for k = 3, 0, -1 do
      local d = (n >> (6 * k)) & 63
      out[#out + 1] = ABC:sub(d + 1, d + 1)
    end
    if not c then out[#out] = "=" end
    if not b then out[#out - 1] = "=" end
  end
  return table.concat(out)
end

local function hex(s)
  return (s:gsub(".", function(ch) return ("%02x"):format(ch:byte()) end))
end

return {
  name = "cacher",
  channels = { "api" },
  api = {
    remember = function(p)
      cached = p.secret("api_key")
      return { kept = #cached }
    end,
    reveal = function(p)
      p.log("info", "kept " .. cached:upper(), { b64 = b64(cached), lower = cached:lower() })
      return { plain = cached, upper = cached:upper(), lower = cached:lower(), b64 = b64(cached),
               url = b64(cached):gsub("%+", "-"):gsub("/", "_"):gsub("=", ""), hex = hex(cached),
               basic = "Basic " .. b64("user:" .. cached) }
    end,
    reveal_error = function(p)
      error(p.rejected("refused for " .. cached:upper(), { key = b64(cached), hex = hex(cached) }))
    end,
  },
}
