-- What an operator reads of manifests and variants: `spine manifests show` as text (JSON with
-- --json), `spine manifests check`'s idle-variant warning only for variants in force for the
-- whole --idle-days, and `spine watch` with variant names whole.
local T = require("spine_test")

describe("spine manifests", function()
  local url
  setup(function()
    url = T.newdb("spec_manifests_cli")
    local code, _, err = T.spine(url, { "manifests", "reload" })
    assert.are.equal(0, code, err)
  end)

  it("show prints a readable view, and the JSON with --json", function()
    local code, out = T.spine(url, { "manifests", "show" })
    assert.are.equal(0, code)
    assert.not_matches("{", out, 1, true)
    assert.matches("loaded %S+ by spine manifests reload", out)
    assert.matches("contract_activation  %(manifests/contract_activation.json, %x+%)", out)
    assert.matches("experiment  activation-polling-2026-03, started 2026-03-01", out, 1, true)
    assert.matches("variant%s+polling%s+10 %%  playbook contract_activation, params activation=polling", out)
    local _, doc = T.spine_json(url, { "manifests", "show" })
    assert.are.equal("spine manifests reload", doc.loaded_by)
    assert.is_true(#doc.manifests >= 5)
  end)

  it("check does not call a variant loaded seconds ago idle, one in force 8 days is", function()
    local code, out = T.spine(url, { "manifests", "check" })
    assert.are.equal(0, code)
    assert.not_matches("received no case", out, 1, true)
    T.sql(url, "UPDATE spine.manifest_loads SET loaded_at = now() - interval '8 days'")
    code, out = T.spine(url, { "manifests", "check" })
    assert.are.equal(0, code)
    assert.matches('variants%[1%]: variant "polling" received no case in 7 days, in force all' ..
                   ' that time', out)
    -- a changed manifest starts its variants' time anew
    T.sql(url, "INSERT INTO spine.manifest_loads (loaded_by, manifests) SELECT 'test'," ..
               " jsonb_agg(CASE WHEN x ->> 'process' = 'contract_activation' THEN x ||" ..
               " '{\"hash\": \"changed\"}' ELSE x END) FROM spine.manifest_loads l," ..
               " jsonb_array_elements(l.manifests) x")
    T.sql(url, "UPDATE spine.manifests SET hash = 'changed' WHERE process = 'contract_activation'")
    code, out = T.spine(url, { "manifests", "check" })
    assert.are.equal(0, code)
    assert.not_matches('"polling" received no case', out, 1, true)
    assert.matches('"direct" received no case', out, 1, true)
  end)
end)

describe("spine watch", function()
  it("prints long process and variant names whole", function()
    local url = T.newdb("spec_watch_names")
    assert.are.equal(0, (T.spine_json(url, { "list" })))
    T.sql(url, "INSERT INTO spine.playbook_versions (hash, name, path, source) VALUES " ..
               "('h', 'x', 'x', 'return {}')")
    T.sql(url, "INSERT INTO spine.workflows (id, process, playbook, version, variant, status," ..
               " trace_id) VALUES ('a', 'meter_reading_reminder_long', 'x', 'h'," ..
               " 'reminder_after_fourteen_days', 'completed', 't'), ('b'," ..
               " 'meter_reading_reminder_long', 'x', 'h', 'control', 'completed', 't')")
    local code, out = T.spine(url, { "watch", "--until-done" })
    assert.are.equal(0, code)
    assert.matches("meter_reading_reminder_long reminder_after_fourteen_days ", out, 1, true)
    assert.matches("meter_reading_reminder_long control                      ", out, 1, true)
  end)
end)
