/* The intent catalog, one entry each, in the order `spine intents` and docs/intents.md list
 * them; catalog.c expands it once. Each entry:
 *
 *   XX(Name, fn, Args, Result, Description)  an intent whose business logic is the PL/pgSQL
 *     function lifecycle.<fn>(args, meta) of intents/sql/ (its latest CREATE OR REPLACE):
 *     catalog.c checks the arguments against the schema Args (intent_args.h), then calls it
 *     in the step's transaction. Result documents what it returns (same form).
 * An intent that needs a handler of its own registers it with spine_intents_register beside
 * spine_catalog_register (as tools/bench does BenchRecord). */
XX(RegisterCustomer, register_customer,
   "name: string, email: email, phone: string?, iban: string?, address: address?, customer_id: id?",
   "customer_id: id",
   "Registers a customer with their contact data and postal address. A caller-supplied customer_id makes it idempotent. Returns {customer_id}.")
XX(RegisterMeterPoint, register_meter_point,
   "customer_id: id, meter_id: id, commodity: electricity|gas, address: address?, meter_point_id: id?",
   "meter_point_id: id",
   "Registers a customer's meter point (a meter is registered to one customer only; the same arguments again return the same meter point). Returns {meter_point_id}.")
XX(RegisterProvider, register_provider, "provider: id, display_name: string?", "provider: id",
   "Registers a provider (reference data, as named in providers/providers.json) so contracts can name it; registering it again updates its display name. Returns {provider}.")
XX(CreateContract, create_contract,
   "customer_id: id, provider: id, tariff: string, meter_point_id: id?, contract_id: id?",
   "contract_id: id, state: draft",
   "Creates a draft contract of a customer with a provider and tariff. A caller-supplied contract_id makes it idempotent. Returns {contract_id, state}.")
XX(RequestActivation, request_activation,
   "contract_id: id, requested_start: date?, expected_version: integer?", SPINE_CONTRACT_CHANGED,
   "Moves a draft contract to pending_activation (the activation goes to the provider). Returns {contract_id, state, version}.")
XX(ConfirmActivation, confirm_activation,
   "contract_id: id, activation_date: date, provider_reference: string?, expected_version: integer?",
   SPINE_CONTRACT_CHANGED,
   "Activates a pending_activation contract as confirmed by the provider. Returns {contract_id, state, version}.")
XX(CancelActivation, cancel_activation,
   "contract_id: id, reason: string, expected_version: integer?", SPINE_CONTRACT_CHANGED,
   "Cancels a draft or pending_activation contract. Returns {contract_id, state, version}.")
XX(ReportPriceIncrease, report_price_increase,
   "contract_id: id, new_price_cents: cents, unit: string, effective_date: date, notice_date: date",
   "price_change_id: id, contract_id: id, termination_deadline: date",
   "Records a provider's price increase on an active contract; the customer may terminate until the day before it takes effect. Returns {price_change_id, contract_id, termination_deadline}.")
XX(RequestSwitch, request_switch,
   "contract_id: id, tariff: string, provider: id?, switch_date: date?, new_contract_id: id?, expected_version: integer?",
   SPINE_CONTRACT_CHANGED ", new_contract_id: id",
   "Starts switching an active contract to another tariff (and provider): the contract goes to switch_pending. Returns {contract_id, state, version, new_contract_id}.")
XX(ConfirmSwitch, confirm_switch,
   "contract_id: id, switch_date: date?, provider_reference: string?, expected_version: integer?",
   SPINE_CONTRACT_CHANGED ", new_contract_id: id",
   "Completes a pending switch: the old contract is terminated on the switch date and the new one is active from it. Returns {contract_id, state, version, new_contract_id}.")
XX(CancelSwitch, cancel_switch, "contract_id: id, reason: string, expected_version: integer?",
   SPINE_CONTRACT_CHANGED,
   "Abandons a pending switch: the contract is active again. Returns {contract_id, state, version}.")
XX(RequestTermination, request_termination,
   "contract_id: id, reason: string, requested_date: date?, expected_version: integer?",
   SPINE_CONTRACT_CHANGED,
   "Asks to terminate an active (or switch_pending) contract: it goes to termination_requested. Returns {contract_id, state, version}.")
XX(ConfirmTermination, confirm_termination,
   "contract_id: id, termination_date: date, expected_version: integer?", SPINE_CONTRACT_CHANGED,
   "Terminates a contract whose termination was requested, as confirmed by the provider. Returns {contract_id, state, version}.")
XX(ApplyManualCredit, apply_manual_credit,
   "customer_id: id, amount_cents: cents, reason: string, contract_id: id?, currency: currency?, approved_by: string?, credit_id: id?",
   "credit_id: id, balance_cents: integer, currency: currency",
   "Credits a customer by hand: appends a ledger entry in integer cents. A caller-supplied credit_id makes it idempotent. Returns {credit_id, balance_cents, currency}.")
XX(CreateTask, create_task, "kind: id, subject: id, data: object?, due: deadline?, task_id: id?",
   "task_id: id, status: open",
   "Opens a human task about a contract or customer (the subject: the id of one that exists, else not_found) for operators; a task opened by a workflow is answered to it (ResolveTask signals task.resolved). due: a time, or a duration from now on the workflow's clock (\"14d\"). A caller-supplied task_id makes it idempotent. Returns {task_id, status}.")
XX(ResolveTask, resolve_task, "task_id: id, outcome: string, data: object?",
   "task_id: id, status: resolved, outcome: string",
   "Resolves an open human task with an outcome (the actor is recorded as resolver) and signals task.resolved {task_id, kind, subject, outcome, data, resolved_by} to the workflow that opened it, if one did and is not the one resolving it. Returns {task_id, status, outcome}.")
XX(ForgetCustomer, forget_customer, "customer_id: id, reason: string",
   "customer_id: id, forgotten_at: time",
   "GDPR erasure: pseudonymises the customer's personal data everywhere it is stored (history and outbox payloads, tasks, the workflows that acted for them), keeps the ledger and amounts, and records that it happened. Returns {customer_id, forgotten_at}.")
XX(GetContract, get_contract, "contract_id: id, as_of: time?",
   "customer_id: id, contract_id: id, provider: id, tariff: string, meter_point_id: id?, "
   "state: " SPINE_CONTRACT_STATES ", requested_start: date?, activation_date: date?, "
   "provider_reference: string?, cancel_reason: string?, pending_switch: object?, "
   "switched_from: id?, switched_to: id?, termination_reason: string?, "
   "termination_requested_date: date?, termination_date: date?, version: integer, "
   "created_at: time, updated_at: time, as_of: time?",
   "Reads a contract; with as_of, the contract as it was at that time (from the history). Returns the contract record.")
XX(GetCustomer, get_customer, "customer_id: id, as_of: time?",
   "customer_id: id, name: string, email: string, phone: string?, iban: string?, "
   "address: address?, forgotten_at: time?, forgotten_reason: string?, "
   "version: integer, created_at: time, updated_at: time, contracts: list, "
   "balances: object, balance_cents: integer, as_of: time?",
   "Reads a customer with their contracts and ledger balances; with as_of, as they were at that time. Returns the customer record.")
XX(GetTask, get_task, "task_id: id",
   "customer_id: id, task_id: id, kind: id, subject: id, status: open|resolved, "
   "data: object, due: time?, outcome: string?, resolution: object?, "
   "resolved_by: string?, created_at: time, resolved_at: time?, workflow_id: id?, "
   "assignee: string?, claimed_at: time?",
   "Reads a human task: kind, subject, data, status and, once resolved, its outcome, resolution and resolver (resolved_by, the actor of ResolveTask), and the workflow that opened it (workflow_id, null when an operator did). Returns the task record.")
