-- A provider without I/O behind a rate limit of 2 requests per second (providers.json).
return {
  name = "slow",
  channels = { "api" },
  api = {
    ping = function(p, args)
      return { n = args.n, provider = p.provider }
    end,
  },
}
