-- The operators' kit (ops/, docs/operations.md#alerts): the Prometheus rules pass `promtool
-- check rules` and their unit tests, each alert has a severity, a summary and a runbook heading
-- in docs/operations.md, and every metric an alert or a dashboard panel names is one that a
-- real `spine serve` exports at /metrics. promtool comes with Debian's `prometheus` package
-- (scripts/install-deps); without it these tests fail, saying so.
local T = require("spine_test")
local yaml = require("lyaml")

local RULES = "ops/prometheus/spine-alerts.yml"
local RULE_TESTS = "ops/prometheus/spine-alerts.test.yml"
local DASHBOARD = "ops/grafana/spine-dashboard.json"

-- What issue 14 §4 asks an operator be alerted on, at least.
local REQUIRED = { "SpineWorkflowsStuck", "SpineWorkflowsFailingRate", "SpineIncidentsOpen",
                   "SpineBreakerOpen", "SpineOutboxDeadLetters", "SpineLoopLagHigh",
                   "SpineWorkerGone" }

local function promtool(args)
  local code, out, err = T.sh("command -v promtool")
  assert(code == 0, "promtool not found: install Debian's prometheus package (scripts/install-deps)")
  code, out, err = T.sh("cd " .. T.q(T.src) .. " && promtool " .. args)
  return code, out .. err
end

local function alerts()
  local list = {}
  for _, g in ipairs(yaml.load(T.source(RULES)).groups) do
    for _, r in ipairs(g.rules) do
      if r.alert then list[#list + 1] = r end
    end
  end
  return list
end

-- The metric names a PromQL expression selects: identifiers outside strings, label matchers,
-- ranges and grouping lists that are neither functions, keywords nor Grafana variables.
local KEYWORDS = { by = true, without = true, on = true, ignoring = true, group_left = true,
                   group_right = true, ["and"] = true, ["or"] = true, unless = true,
                   bool = true, offset = true, inf = true, nan = true }
local function metric_names(expr)
  local s = expr:gsub('"[^"]*"', ""):gsub("{[^}]*}", " "):gsub("%[[^%]]*%]", " ")
  s = s:gsub("%f[%w_](by)%s*%b()", " "):gsub("%f[%w_](without)%s*%b()", " ")
       :gsub("%f[%w_](on)%s*%b()", " "):gsub("%f[%w_](ignoring)%s*%b()", " ")
       :gsub("%f[%w_](group_left)%s*%b()", " "):gsub("%f[%w_](group_right)%s*%b()", " ")
       :gsub("%$[%w_]+", " ")
  local names = {}
  for pos, name in s:gmatch("()([%a_:][%w_:]*)") do
    local before = pos > 1 and s:sub(pos - 1, pos - 1) or ""
    local after = s:match("^%s*(.)", pos + #name) or ""
    if not before:match("[%w_.]") and after ~= "(" and not KEYWORDS[name] then
      names[#names + 1] = name
    end
  end
  return names
end

-- Every PromQL expression of the dashboard: panel targets (in rows too) and variable queries.
local function dashboard_exprs(d)
  local exprs = {}
  local function panels(list)
    for _, p in ipairs(list or {}) do
      for _, t in ipairs(p.targets or {}) do exprs[#exprs + 1] = { p.title, t.expr } end
      panels(p.panels)
    end
  end
  panels(d.panels)
  for _, v in ipairs(d.templating.list) do
    if v.type == "query" then
      local q = type(v.query) == "table" and v.query.query or v.query
      exprs[#exprs + 1] = { "variable " .. v.name, (q:gsub("^label_values%((.*),%s*[%w_]+%)$", "%1")) }
    end
  end
  return exprs
end

-- The metric families a fresh `spine serve` exports, once its census has counted.
local exported
local function exported_families()
  if exported then return exported end
  local url = T.newdb("spec_ops_kit_metrics")
  local srv = T.serve(url)
  local base = "http://127.0.0.1:" .. T.http_port(srv)
  T.wait_until(function() return T.http("GET", base .. "/healthz") == 200 end, 30,
               "/healthz to answer 200")
  local text = T.wait_until(function()
    local status, body = T.http("GET", base .. "/metrics")
    return status == 200 and T.metric(body, "spine_workers_alive") == 1 and body
  end, 30, "the census to count this worker")
  T.kill(srv, "TERM")
  exported = {}
  for name in text:gmatch("# TYPE ([%w_:]+) ") do exported[name] = true end
  return exported
end

describe("the operators' kit", function()
  it("has alert rules that promtool checks", function()
    local code, out = promtool("check rules " .. RULES)
    assert.are.equal(0, code, out)
    assert.matches("SUCCESS", out)
  end)

  it("passes its alerts' unit tests, which fire incidents and an open breaker and stay silent on a healthy fleet",
     function()
    local code, out = promtool("test rules " .. RULE_TESTS)
    assert.are.equal(0, code, out)
    -- the unit tests do test that: a firing expectation for each, and empty ones for healthy
    local fires, silent = {}, {}
    for _, t in ipairs(yaml.load(T.source(RULE_TESTS)).tests) do
      for _, a in ipairs(t.alert_rule_test) do
        if #(a.exp_alerts or {}) > 0 then fires[a.alertname] = true else silent[a.alertname] = true end
      end
    end
    for _, name in ipairs({ "SpineIncidentsOpen", "SpineBreakerOpen" }) do
      assert.is_true(fires[name], name .. " never fires in " .. RULE_TESTS)
    end
    for _, r in ipairs(alerts()) do
      assert.is_true(silent[r.alert], r.alert .. " is never tested silent in " .. RULE_TESTS)
    end
  end)

  it("alerts on what issue 14 names, each with a severity, a summary and a runbook heading",
     function()
    local ops = T.source("docs/operations.md")
    local anchors = {}
    for heading in ops:gmatch("\n#+ ([^\n]+)") do
      anchors[heading:lower():gsub("[^%w%s_-]", ""):gsub("%s", "-")] = true
    end
    local by_name = {}
    for _, r in ipairs(alerts()) do
      by_name[r.alert] = r
      assert.is_truthy(({ page = true, ticket = true })[r.labels and r.labels.severity],
                       r.alert .. ": severity page or ticket")
      assert.is_truthy(r.annotations.summary, r.alert .. ": summary")
      local anchor = r.annotations.runbook_url:match("^docs/operations%.md#(.+)$")
      assert.is_truthy(anchor, r.alert .. ": runbook_url into docs/operations.md")
      assert.is_true(anchors[anchor], r.alert .. ": docs/operations.md has no heading #" .. anchor)
      assert.are.equal(r.alert:lower(), anchor)
    end
    for _, name in ipairs(REQUIRED) do assert.is_truthy(by_name[name], "no alert " .. name) end
  end)

  it("alerts only on metrics that spine serve exports", function()
    local have = exported_families()
    for _, r in ipairs(alerts()) do
      local names = metric_names(r.expr)
      assert.is_true(#names > 0, r.alert .. ": no metric in " .. r.expr)
      for _, name in ipairs(names) do
        assert.is_true(have[name], r.alert .. ": /metrics has no " .. name)
      end
    end
  end)

  it("has a Grafana dashboard whose every query names metrics that spine serve exports",
     function()
    local d = T.json.decode(T.source(DASHBOARD))
    assert.is_truthy(d.uid and d.title and d.schemaVersion, "a dashboard model: uid, title, schemaVersion")
    local have = exported_families()
    local seen, titles = {}, {}
    for _, e in ipairs(dashboard_exprs(d)) do
      titles[#titles + 1] = e[1]
      local names = metric_names(e[2])
      assert.is_true(#names > 0, e[1] .. ": no metric in " .. e[2])
      for _, name in ipairs(names) do
        assert.is_true(have[name], e[1] .. ": /metrics has no " .. name .. " (" .. e[2] .. ")")
        seen[name] = true
      end
    end
    -- the topics issue 14 lists, each on a panel
    for _, m in ipairs({ "spine_workflows_ended_total", "spine_steps_total", "spine_workflows",
                         "spine_incidents_open", "spine_provider_breaker_state",
                         "spine_outbox_dead_letters", "spine_loop_lag_max_seconds",
                         "spine_http_requests_total", "spine_outbox_lag_seconds" }) do
      assert.is_true(seen[m], "no panel shows " .. m)
    end
  end)

  it("reads metric names out of PromQL", function()
    assert.are.same({ "a_total", "b" },
                    metric_names('sum by (status) (rate(a_total{x="y",z=~"$job"}[5m])) / on (k) ' ..
                                 'group_left (j) max without (instance) (b) > bool 0.1'))
  end)
end)

describe("the census and the engine's counts in /metrics", function()
  it("counts workflows by status, open incidents and ends, off the loop", function()
    local url = T.newdb("spec_ops_census")
    local srv = T.serve(url, { SPINE_CENSUS_MS = "100" })
    local base = "http://127.0.0.1:" .. T.http_port(srv)
    local function scrape() return select(2, T.http("GET", base .. "/metrics")) end
    local code, started = T.spine_json(url, { "start", "tests/playbooks/waiter.lua" })
    assert.are.equal(0, code)
    T.sql(url, "INSERT INTO spine.incidents (workflow_id, seq, kind, step, error, attempts)" ..
               " VALUES ('wf-none', 1, 'provider_exhausted', 'gridco.submit', '{}', 3)")
    local waiting = T.wait_until(function()
      local text = scrape()
      return T.metric(text, 'spine_workflows{status="waiting"}') == 1 and
             T.metric(text, "spine_incidents_open") == 1 and text
    end, 30, "the census to count the waiting workflow and the incident")
    assert.are.equal(0, (T.spine_json(url, { "signal", started.id, "go", "--data", '{"value":1}' })))
    local done = T.wait_until(function()
      local text = scrape()
      return T.metric(text, 'spine_workflows_ended_total{status="completed"}') == 1 and
             T.metric(text, 'spine_workflows{status="waiting"}') == 0 and text
    end, 30, "the workflow's end to be counted")
    T.kill(srv, "TERM")
    assert.are.equal(0, T.metric(waiting, 'spine_workflows_ended_total{status="completed"}'))
    assert.are.equal(0, T.metric(done, 'spine_workflows{status="stuck"}'))
    assert.are.equal(0, T.metric(done, 'spine_workflows_ended_total{status="failed"}'))
    assert.are.equal(0, T.metric(done, "spine_census_errors_total"))
    assert.are.equal(1, T.metric(done, "spine_workers_alive"))
  end)
end)
