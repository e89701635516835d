-- Values the database cannot store (a NUL byte, bytes that are not UTF-8), as a provider's
-- binary body would bring them: each is refused where it is made, naming it, and the playbook
-- may catch that; the one it does not catch fails the workflow — never leaves it stuck.
return {
  name = "unstorable",
  run = function(ctx, input)
    local caught = {}
    for _, v in ipairs({ "a\0b", "caf\233", "\237\160\128" }) do
      local ok, err = pcall(ctx.step, "read", function() return { body = v } end)
      caught[#caught + 1] = not ok and err.code or "stored"
    end
    local ok, err = pcall(ctx.set, "note", "x\0y")
    caught[#caught + 1] = not ok and "refused" or "stored"
    ctx.step("fine", function() return { body = "caf\195\169 \240\159\152\128" } end)
    if input.fail then ctx.step("last", function() return "\255" end) end
    return { caught = caught }
  end,
}
