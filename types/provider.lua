---@meta
-- LuaLS annotations for provider adapters (SPEC §6, docs/providers.md): the module a
-- providers/<name>.lua file returns and the provider context `p` its functions receive.
-- Editors with the Lua language server complete and check adapter code with these
-- (.luarc.json at the repository root points at this folder). Not loaded at run time.
-- tests/spec/docs/types_spec.lua checks them against runtime/providers/pctx.c and providers.c.

--- An operation of a channel: gets `p` and the arguments the playbook gave to ctx.provider;
--- returns the result (anything JSON can hold), or raises p.transient(...) / p.rejected(...).
---@alias SpineOperation fun(p: SpineProviderContext, args: table): any

--- What a providers/<name>.lua file returns. Besides these fields, it has one table per
--- channel listed in `channels`, mapping operation names to functions:
--- `api = { submit_switch = function(p, args) ... end }`.
---@class SpineAdapter
---@field name string must equal the file name (providers/<name>.lua)
---@field channels string[] the fallback chain, in order of preference ("api", "email", ...)
---@field webhook? SpineWebhookHandler|SpineWebhook inbound: POST /v1/webhooks/<name>
---@field [string] table<string, SpineOperation> a channel's operations

---@alias SpineWebhookHandler fun(p: SpineProviderContext, request: SpineWebhookRequest): SpineWebhookAction|SpineWebhookAction[]|nil

--- A webhook that verifies its provider's own signature scheme instead of Spine's default
--- (X-Spine-Timestamp and X-Spine-Signature, the HMAC of "<timestamp>.<body>").
---@class SpineWebhook
---@field verify? fun(p: SpineProviderContext, request: SpineWebhookRequest): string returns the delivery id (1 to 200 bytes: a delivery already accepted is not delivered again), or raises (401)
---@field handle SpineWebhookHandler what the function form of webhook does

--- The request of an inbound webhook: as received in webhook.verify, verified in the handler.
---@class SpineWebhookRequest
---@field body string the raw body
---@field json? any the body decoded (a verified webhook's body is JSON; in verify, nil if not)
---@field headers table<string, string> header names lower-cased

--- What a webhook asks for: a signal for one workflow (`workflow_id`), a signal for every
--- running workflow of a contract (`contract_id`), or a new case (`start`).
---@class SpineWebhookAction
---@field signal? string the signal's name, as the playbook's ctx.wait(name)
---@field workflow_id? string with signal: the workflow to signal
---@field contract_id? string with signal: signal every running workflow of this contract
---@field payload? table with signal: what ctx.wait returns
---@field start? string a process to start a case of
---@field input? table with start: the case's input
---@field idempotency_key? string with start: the same key never starts two cases

--- An error value made by p.transient or p.rejected: raise it with error(...).
---@class SpineProviderError
---@field kind "transient"|"rejected"
---@field code string
---@field message string
---@field details? any

---@class SpineHttpOptions
---@field json? any a table sent as JSON (Content-Type: application/json unless given)
---@field body? string a body sent as is (not with json)
---@field headers? table<string, string>
---@field timeout? string|number this request's limit ("20s", or seconds); default: the attempt's

---@class SpineHttpResponse
---@field status integer any status: check it (only transport failures raise)
---@field headers table<string, string> names lower-cased; a repeated header's values joined by ", "
---@field body string
---@field json? any the body decoded, when it is JSON

--- HTTP on the engine's loop (libcurl): never blocks other workflows; TLS verified, the
--- workflow's `traceparent` sent, responses capped in size. A failed connection or a timeout
--- raises a transient error (code "unavailable" or "timeout"). Only to base_url's host and port
--- and the provider's allowed_hosts (providers.json): any other host fails the call as an adapter
--- fault (code "host_not_allowed"), nothing sent. Redirects are returned, never followed. Not
--- available in webhook.
---@class SpineHttp
local http = {}

---@param url string
---@param opts? SpineHttpOptions
---@return SpineHttpResponse
function http.get(url, opts) end

---@param url string
---@param opts? SpineHttpOptions
---@return SpineHttpResponse
function http.post(url, opts) end

---@param url string
---@param opts? SpineHttpOptions
---@return SpineHttpResponse
function http.put(url, opts) end

---@param url string
---@param opts? SpineHttpOptions
---@return SpineHttpResponse
function http.patch(url, opts) end

---@param url string
---@param opts? SpineHttpOptions
---@return SpineHttpResponse
function http.delete(url, opts) end

---@class SpineEmailMessage
---@field to string|string[] one address or a list of them (at most 32)
---@field subject string
---@field body string plain text
---@field from? string default: `smtp.from` of providers.json

---@class SpineEmail
local email = {}

--- Sends one plain-text email over SMTP (`smtp` in providers.json), with the idempotency key
--- as Message-ID and X-Idempotency-Key. A refused connection or a 4xx reply raises a transient
--- error, a 5xx reply a rejection (code "smtp_refused"). Not available in webhook.
---@param message SpineEmailMessage
---@return true
function email.send(message) end

--- The provider context: what an adapter's operations and webhook receive as `p`.
---@class SpineProviderContext
---@field http SpineHttp
---@field email SpineEmail
---@field config table<string, any> this provider's block of providers.json (read-only)
---@field idempotency_key? string "<workflow id>:<step>", the same for every attempt and channel (nil in webhook)
---@field provider string this adapter's name
---@field channel? string the channel running (nil in webhook)
---@field operation? string the operation running (nil in webhook)
local p = {}

--- A credential: $SPINE_SECRET_<PROVIDER>_<NAME> (upper case), else the secrets file
--- ($SPINE_SECRETS_FILE). Raises when there is none. Its value is replaced by "[secret]" in
--- whatever leaves the call (results, errors, log lines).
---@param name string
---@return string
function p.secret(name) end

--- A log line with the provider, channel, operation and workflow id; secrets are masked.
---@param level "debug"|"info"|"warn"|"error"
---@param message string
---@param fields? table
function p.log(level, message, fields) end

--- An error value meaning "try again later or elsewhere": error(p.transient("upstream 503")).
---@param message string
---@param details? any
---@return SpineProviderError
function p.transient(message, details) end

--- An error value meaning "the provider said no" (never retried, no other channel):
--- error(p.rejected("switch refused", res.json)).
---@param message string
---@param details? any
---@return SpineProviderError
function p.rejected(message, details) end

--- The HMAC-SHA256 of `data` keyed with `key`, in lower-case hex: for webhook.verify.
---@param key string
---@param data string
---@return string
function p.hmac_sha256(key, data) end

--- `s` percent-encoded for one URL path segment or query value (all but A-Z a-z 0-9 - . _ ~):
--- `p.config.base_url .. "/v1/switches/" .. p.urlencode(ref)`.
---@param s string
---@return string
function p.urlencode(s) end

--- Whether two strings are equal, taking the same time wherever they first differ (only their
--- lengths may show): compare signatures with it, never with ==.
---@param a string
---@param b string
---@return boolean
function p.equal(a, b) end

--- Fills {{name}} and {{a.b}} in a template: the file providers/templates/<template>.txt if
--- there is one, else the string itself. A missing variable raises.
---@param template string
---@param vars? table
---@return string
function p.render(template, vars) end
