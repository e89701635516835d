-- Calls an adapter that keeps a secret in its module state (tests/providers/cacher.lua): the
-- first call reads it, the two later ones hand it out, in simple forms, without reading it.
return {
  name = "secret_cache",
  run = function(ctx)
    ctx.provider("cacher", "remember", {})
    local shown = ctx.provider("cacher", "reveal", {})
    local ok, err = pcall(ctx.provider, "cacher", "reveal_error", {})
    assert(not ok, "reveal_error answered")
    return { shown = shown, refused = err.message, details = err.details }
  end,
}
