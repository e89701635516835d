---@meta
-- LuaLS annotations for playbooks: the `ctx` a playbook's `run` receives (SPEC §4).
-- Editors with the Lua language server complete and check playbook code with these
-- (.luarc.json at the repository root points at this folder). Not loaded at run time.

---@class SpineError
---@field kind string "rejected", "runtime", "business", "timeout", "cancelled", "child_failed", ...
---@field code string machine-readable reason, e.g. "invalid_transition"
---@field message string what went wrong, with file:line for playbook errors
---@field field? string the argument or input field that was wrong
---@field where? string file:line in the playbook
---@field details? table what ctx.fail was given

---@class SpineRetry
---@field attempts? integer tries in all (default 1)
---@field backoff? string|number first wait between tries ("1s", "5m")
---@field factor? number growth of the wait per try (default 2)
---@field max? string|number the longest wait

---@class SpineStepOptions
---@field retry? SpineRetry

---@class SpineProviderRetry: SpineRetry
---@field non_retryable? string[] transient error codes that fail the step at once

---@class SpineProviderOptions
---@field retry? SpineProviderRetry default: 5 attempts, "1s" doubling, at most "5m" apart
---@field timeout? string|number each attempt's limit (default: the provider's, else 30s)

---@class SpineWaitOptions
---@field timeout? string|number give up after this long: ctx.wait then returns nil

---@class SpineCtx
---@field id string the workflow id
---@field process string the process (manifest) name
---@field playbook string the playbook's name
---@field version string the playbook source hash this run is pinned to
---@field variant? string the dispatcher's variant, nil without a manifest
---@field experiment? string the experiment id, nil without one
---@field attempt integer 1, then +1 per operator retry
---@field trace_id string the trace id carried to logs, intents and providers
---@field parent_id? string the parent workflow's id for a child
local ctx = {}

--- Applies a business intent exactly once (its writes and the step commit together).
--- A rejection raises a SpineError with kind "rejected".
---@param name string an intent of `spine intents`
---@param args table
---@return table result
function ctx.intent(name, args) end

--- Runs `fn` once, records its result, replays it afterwards. No ctx calls inside `fn`.
---@param name string
---@param fn fun(): any
---@param opts? SpineStepOptions
---@return any
function ctx.step(name, fn, opts) end

--- Calls a provider adapter's operation (providers/<provider>.lua) through its channel
--- fallback chain, at least once, with the idempotency key "<workflow id>:<step>".
--- Transient failures are retried by opts.retry on durable timers; when the attempts run
--- out the workflow is paused with an incident for an operator (spine retry / skip / cancel).
--- A rejection (p.rejected) raises a SpineError with kind "rejected".
---@param provider string
---@param operation string
---@param args? table
---@param opts? SpineProviderOptions
---@return any result what the adapter returned
function ctx.provider(provider, operation, args, opts) end

--- Durable sleep: "30s", "5m", "2h", "14d", or seconds.
---@param duration string|number
function ctx.sleep(duration) end

--- Durable sleep until a time: seconds since the epoch or "2026-12-01T10:00:00Z".
---@param time string|number
function ctx.sleep_until(time) end

--- Waits for signal `name`; returns its payload, or nil after the timeout.
---@param name string
---@param opts? SpineWaitOptions
---@return table|nil
function ctx.wait(name, opts) end

--- The time, recorded (seconds since the epoch, millisecond precision; virtual under --clock virtual).
---@return number
function ctx.now() end

--- A recorded random number in [0, 1).
---@return number
function ctx.random() end

--- A recorded UUID.
---@return string
function ctx.uuid() end

--- true for runs that reach this point with the new code, false for older histories.
---@param id string
---@return boolean
function ctx.patched(id) end

--- Runs a child workflow and waits for its result (a failure raises kind "child_failed").
---@param process string a process or playbook name, or a file path
---@param input? table
---@return any
function ctx.child(process, input) end

--- Starts a workflow without waiting; returns its id.
---@param process string
---@param input? table
---@return string id
function ctx.start(process, input) end

--- Sets the business state shown by `spine show` and `spine list`.
---@param name string
function ctx.state(name) end

--- Sets a searchable attribute of the workflow.
---@param key string
---@param value any
function ctx.set(key, value) end

--- A JSON log line with the workflow and trace ids (not repeated on replay).
---@param level "debug"|"info"|"warn"|"error"
---@param message string
---@param fields? table
function ctx.log(level, message, fields) end

--- Ends the workflow as a business failure; its compensations run.
---@param code string
---@param message? string
---@param details? table
function ctx.fail(code, message, details) end

--- Registers an undo: if the workflow fails, the undos run newest first, each durably.
---@param fn fun()
function ctx.compensate(fn) end

---@class SpinePlaybook
---@field name string
---@field description? string
---@field input? table<string, string> field -> "string"|"number"|"integer"|"boolean"|"table"|"date", "?" for optional
---@field run fun(ctx: SpineCtx, input: table): any
