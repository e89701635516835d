-- The system of record (schema `lifecycle`): customers, addresses, meter points, providers,
-- contracts, price changes, the credit ledger, human tasks, the append-only history and the
-- transactional outbox. Only the intents' functions (1003_lifecycle_intents.sql) write here.
--
-- Sharding (Citus): every customer-owned table has the customer id first in its primary key,
-- so they can all be distributed by customer_id and co-located; `directory` maps the ids that
-- intents receive alone (contract, task, meter) to their customer and would be distributed by
-- id; `providers` is reference data (a Citus reference table).
CREATE SCHEMA IF NOT EXISTS lifecycle;

CREATE TABLE lifecycle.providers (
  provider text PRIMARY KEY,             -- the name used in providers/providers.json
  display_name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Global uniqueness of ids that arrive without their customer: kind 'contract', 'task', 'meter'.
CREATE TABLE lifecycle.directory (
  kind text NOT NULL CHECK (kind IN ('contract', 'task', 'meter')),
  id text NOT NULL,
  customer_id text NOT NULL,
  PRIMARY KEY (kind, id)
);

CREATE TABLE lifecycle.customers (
  customer_id text PRIMARY KEY,
  name text NOT NULL,                    -- personal (ForgetCustomer pseudonymises it)
  email text NOT NULL,                   -- personal
  phone text,                            -- personal
  iban text,                             -- personal
  address_id text,                       -- their postal address, in lifecycle.addresses
  args_digest text,                      -- sha256 of the registering arguments (idempotency)
  forgotten_at timestamptz,              -- set by ForgetCustomer
  forgotten_reason text,
  version int NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE lifecycle.addresses (
  customer_id text NOT NULL REFERENCES lifecycle.customers,
  address_id text NOT NULL,
  street text,                           -- personal
  postcode text,                         -- personal
  city text,                             -- personal
  country text NOT NULL DEFAULT 'DE',
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (customer_id, address_id)
);

CREATE TABLE lifecycle.meter_points (
  customer_id text NOT NULL REFERENCES lifecycle.customers,
  meter_point_id text NOT NULL,
  meter_id text NOT NULL,                -- the grid's meter number (unique: see directory)
  commodity text NOT NULL CHECK (commodity IN ('electricity', 'gas')),
  address_id text,
  args_digest text,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (customer_id, meter_point_id),
  UNIQUE (customer_id, meter_id),
  FOREIGN KEY (customer_id, address_id) REFERENCES lifecycle.addresses
);

-- The contract state machine (SPEC §5):
--   draft -> pending_activation -> active -> termination_requested -> terminated
--   draft | pending_activation -> cancelled;  active -> switch_pending -> terminated (switched)
--   switch_pending -> active (switch cancelled) | termination_requested
CREATE TABLE lifecycle.contracts (
  customer_id text NOT NULL REFERENCES lifecycle.customers,
  contract_id text NOT NULL,
  provider text NOT NULL REFERENCES lifecycle.providers,
  tariff text NOT NULL,
  meter_point_id text,
  state text NOT NULL CHECK (state IN ('draft', 'pending_activation', 'active', 'cancelled',
                                       'switch_pending', 'termination_requested', 'terminated')),
  requested_start date,
  activation_date date,
  provider_reference text,
  cancel_reason text,
  pending_switch jsonb,                  -- {provider, tariff, switch_date, new_contract_id}
  switched_from text,                    -- the contract this one replaced by a switch
  switched_to text,                      -- the contract that replaced this one
  termination_reason text,
  termination_requested_date date,
  termination_date date,
  args_digest text,
  version int NOT NULL DEFAULT 1,        -- +1 per change: `expected_version` checks it
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (customer_id, contract_id),
  FOREIGN KEY (customer_id, meter_point_id) REFERENCES lifecycle.meter_points
);
CREATE INDEX contracts_by_state ON lifecycle.contracts (state, provider);

CREATE TABLE lifecycle.price_changes (
  customer_id text NOT NULL,
  price_change_id text NOT NULL,
  contract_id text NOT NULL,
  new_price_cents bigint NOT NULL CHECK (new_price_cents > 0),
  unit text NOT NULL,
  effective_date date NOT NULL,
  notice_date date NOT NULL,
  termination_deadline date NOT NULL,    -- the customer's special termination right ends here
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (customer_id, price_change_id),
  FOREIGN KEY (customer_id, contract_id) REFERENCES lifecycle.contracts
);
CREATE INDEX price_changes_by_contract ON lifecycle.price_changes (customer_id, contract_id);

-- The credit ledger: append-only entries in integer cents; a balance is a sum.
CREATE TABLE lifecycle.credits (
  customer_id text NOT NULL REFERENCES lifecycle.customers,
  credit_id text NOT NULL,
  contract_id text,
  amount_cents bigint NOT NULL CHECK (amount_cents > 0),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  balance_cents bigint NOT NULL,         -- the customer's balance in `currency` after this entry
  reason text NOT NULL,
  approved_by text,
  actor text NOT NULL,
  args_digest text,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (customer_id, credit_id),
  FOREIGN KEY (customer_id, contract_id) REFERENCES lifecycle.contracts
);

CREATE TABLE lifecycle.tasks (
  customer_id text NOT NULL REFERENCES lifecycle.customers,
  task_id text NOT NULL,
  kind text NOT NULL,
  subject text NOT NULL,                 -- a contract or customer id
  status text NOT NULL CHECK (status IN ('open', 'resolved')),
  data jsonb NOT NULL DEFAULT '{}',
  due timestamptz,
  outcome text,
  resolution jsonb,
  resolved_by text,
  args_digest text,
  created_at timestamptz NOT NULL DEFAULT now(),
  resolved_at timestamptz,
  PRIMARY KEY (customer_id, task_id)
);
CREATE INDEX tasks_open ON lifecycle.tasks (due NULLS LAST, created_at) WHERE status = 'open';
CREATE INDEX tasks_by_subject ON lifecycle.tasks (customer_id, subject);

-- The immutable history: one row per change of an entity, with who, from where, before/after.
-- `after` of the latest row at or before a time is the entity as it was then (temporal reads).
CREATE TABLE lifecycle.history (
  customer_id text NOT NULL,
  history_id bigserial NOT NULL,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  entity text NOT NULL,                  -- 'customer', 'contract', 'credit', 'task', ...
  entity_id text NOT NULL,
  intent text NOT NULL,
  actor text NOT NULL,
  workflow_id text,                      -- NULL when an operator applied it (`spine intent`)
  step_seq int,
  trace_id text,
  before jsonb,
  after jsonb,
  PRIMARY KEY (customer_id, history_id)
);
CREATE INDEX history_by_entity ON lifecycle.history (customer_id, entity, entity_id, at);
CREATE INDEX history_by_workflow ON lifecycle.history (workflow_id) WHERE workflow_id IS NOT NULL;
CREATE INDEX history_by_trace ON lifecycle.history (trace_id) WHERE trace_id IS NOT NULL;

-- The transactional outbox: events written in the intent's transaction, delivered by the relay
-- of `spine serve` at least once, in order per ordering_key (the contract id, or the customer
-- id for customer-level events). Rows of one key are written under the lock of their contract
-- or customer row, so event_id order is commit order within a key.
CREATE TABLE lifecycle.outbox (
  customer_id text NOT NULL,
  event_id bigserial NOT NULL,
  ordering_key text NOT NULL,
  event_type text NOT NULL,              -- 'ContractActivated', ...
  payload jsonb NOT NULL,
  intent text NOT NULL,
  workflow_id text,
  trace_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
  attempts int NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error text,
  delivered_at timestamptz,
  PRIMARY KEY (customer_id, event_id)
);
CREATE INDEX outbox_due ON lifecycle.outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_by_key ON lifecycle.outbox (ordering_key, event_id) WHERE status <> 'delivered';
CREATE INDEX outbox_dead ON lifecycle.outbox (created_at) WHERE status = 'dead';

-- Wakes the relay: one notification per committing transaction (NOTIFY folds duplicates).
CREATE FUNCTION lifecycle.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('spine_outbox', '');
  RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON lifecycle.outbox
  FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.outbox_notify();

-- Append-only: the database refuses UPDATE, DELETE and TRUNCATE of history and the ledger.
-- One exception: lifecycle.forget_customer() sets the transaction-local flag
-- `lifecycle.forgetting` to the customer id; then rows of that (already forgotten) customer may
-- have their personal payload columns rewritten, and nothing else. (In production the
-- application role is granted only INSERT and SELECT on these tables; the owner's functions
-- are the only writers, and a superuser can always bypass triggers.)
CREATE FUNCTION lifecycle.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  forgetting text := current_setting('lifecycle.forgetting', true);
BEGIN
  IF TG_OP = 'UPDATE' AND forgetting IS NOT NULL THEN
    IF forgetting = OLD.customer_id AND NEW.customer_id = OLD.customer_id
       AND EXISTS (SELECT 1 FROM lifecycle.customers c
                   WHERE c.customer_id = OLD.customer_id AND c.forgotten_at IS NOT NULL) THEN
      IF TG_TABLE_NAME = 'history' AND (to_jsonb(NEW) - 'before' - 'after')
                                      = (to_jsonb(OLD) - 'before' - 'after') THEN
        RETURN NEW;
      END IF;
      IF TG_TABLE_NAME = 'credits' AND (to_jsonb(NEW) - 'reason' - 'args_digest')
                                      = (to_jsonb(OLD) - 'reason' - 'args_digest') THEN
        RETURN NEW;
      END IF;
    END IF;
  END IF;
  RAISE EXCEPTION 'lifecycle.%: % refused: the table is append-only', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'SPIT0', HINT = 'history changes only through ForgetCustomer';
END $$;
CREATE TRIGGER history_append_only BEFORE UPDATE OR DELETE ON lifecycle.history
  FOR EACH ROW EXECUTE FUNCTION lifecycle.refuse_change();
CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON lifecycle.history
  FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.refuse_change();
CREATE TRIGGER credits_append_only BEFORE UPDATE OR DELETE ON lifecycle.credits
  FOR EACH ROW EXECUTE FUNCTION lifecycle.refuse_change();
CREATE TRIGGER credits_no_truncate BEFORE TRUNCATE ON lifecycle.credits
  FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.refuse_change();
