-- The business logic of the intent catalog: one function per intent, lifecycle.<snake_name>(a,
-- m), called by the intent's C handler as one statement in the transaction that also writes the
-- step checkpoint (one round trip in the pipelined group commit). `a` is the validated
-- arguments object, `m` the call's meta (lifecycle.meta). Each function locks what it changes
-- (SELECT ... FOR UPDATE), checks the state, writes, appends history and outbox rows and returns
-- the result object; or raises with SQLSTATE SPNF0 not_found, SPIT0 invalid_transition, SPCF0
-- conflict, SPIA0 invalid_argument (COLUMN names the argument): then nothing is applied.

-- ---- helpers ----

CREATE OR REPLACE FUNCTION lifecycle.meta(intent text, actor text, workflow_id text,
                                          step_seq int, trace_id text)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('intent', intent, 'actor', actor, 'workflow_id', workflow_id,
                            'step_seq', step_seq, 'trace_id', trace_id)
$$;

-- Raises a rejection: "<Intent>: <field>: <message>".
CREATE OR REPLACE FUNCTION lifecycle.reject(m jsonb, code text, field text, message text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = code, COLUMN = coalesce(field, ''),
    MESSAGE = (m->>'intent') || ': ' || coalesce(field || ': ', '') || message;
END $$;

-- The arguments' fingerprint: a create with a caller-supplied id is idempotent on it.
CREATE OR REPLACE FUNCTION lifecycle.digest(a jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to((a - 'expected_version')::text, 'UTF8')), 'hex')
$$;

CREATE OR REPLACE FUNCTION lifecycle.arg_date(m jsonb, a jsonb, field text) RETURNS date
LANGUAGE plpgsql AS $$
BEGIN
  RETURN (a->>field)::date;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_text_representation
THEN
  PERFORM lifecycle.reject(m, 'SPIA0', field, format('"%s" is not a date (expected YYYY-MM-DD)',
                                                     a->>field));
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION lifecycle.arg_time(m jsonb, a jsonb, field text) RETURNS timestamptz
LANGUAGE plpgsql AS $$
BEGIN
  RETURN (a->>field)::timestamptz;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_text_representation
THEN
  PERFORM lifecycle.reject(m, 'SPIA0', field,
                           format('"%s" is not a time (expected ISO 8601)', a->>field));
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION lifecycle.history_append(m jsonb, customer text, entity text,
                                                    entity_id text, before jsonb, after jsonb)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO lifecycle.history (customer_id, entity, entity_id, intent, actor, workflow_id,
                                 step_seq, trace_id, before, after)
  VALUES (customer, entity, entity_id, m->>'intent', m->>'actor', m->>'workflow_id',
          (m->>'step_seq')::int, m->>'trace_id', before, after)
$$;

CREATE OR REPLACE FUNCTION lifecycle.outbox_append(m jsonb, customer text, ordering_key text,
                                                   event_type text, payload jsonb)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO lifecycle.outbox (customer_id, ordering_key, event_type, payload, intent,
                                workflow_id, trace_id)
  VALUES (customer, ordering_key, event_type, payload, m->>'intent', m->>'workflow_id',
          m->>'trace_id')
$$;

CREATE OR REPLACE FUNCTION lifecycle.contract_json(c lifecycle.contracts) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN c.contract_id IS NULL THEN NULL ELSE to_jsonb(c) - 'args_digest' END
$$;

CREATE OR REPLACE FUNCTION lifecycle.customer_json(id text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT to_jsonb(c) - 'args_digest' - 'address_id'
         || jsonb_build_object('address', (SELECT jsonb_build_object('street', d.street,
                'postcode', d.postcode, 'city', d.city, 'country', d.country)
              FROM lifecycle.addresses d
              WHERE d.customer_id = c.customer_id AND d.address_id = c.address_id))
  FROM lifecycle.customers c WHERE c.customer_id = id
$$;

-- The customer row, locked (FOR UPDATE, or FOR SHARE when `share`); rejects unknown and (when
-- `active`) forgotten customers.
CREATE OR REPLACE FUNCTION lifecycle.lock_customer(m jsonb, id text, share boolean,
                                                   active boolean)
RETURNS lifecycle.customers LANGUAGE plpgsql AS $$
DECLARE
  c lifecycle.customers;
BEGIN
  IF share THEN
    SELECT * INTO c FROM lifecycle.customers WHERE customer_id = id FOR SHARE;
  ELSE
    SELECT * INTO c FROM lifecycle.customers WHERE customer_id = id FOR UPDATE;
  END IF;
  IF c.customer_id IS NULL THEN
    PERFORM lifecycle.reject(m, 'SPNF0', 'customer_id', format('no customer %s', id));
  END IF;
  IF active AND c.forgotten_at IS NOT NULL THEN
    PERFORM lifecycle.reject(m, 'SPIT0', 'customer_id',
                             format('customer %s was forgotten (ForgetCustomer)', id));
  END IF;
  RETURN c;
END $$;

-- The contract of a.contract_id, locked for update; checks a.expected_version if given.
CREATE OR REPLACE FUNCTION lifecycle.lock_contract(m jsonb, a jsonb) RETURNS lifecycle.contracts
LANGUAGE plpgsql AS $$
DECLARE
  cust text;
  c lifecycle.contracts;
BEGIN
  SELECT customer_id INTO cust FROM lifecycle.directory
  WHERE kind = 'contract' AND id = a->>'contract_id';
  IF cust IS NOT NULL THEN
    SELECT * INTO c FROM lifecycle.contracts
    WHERE customer_id = cust AND contract_id = a->>'contract_id' FOR UPDATE;
  END IF;
  IF c.contract_id IS NULL THEN
    PERFORM lifecycle.reject(m, 'SPNF0', 'contract_id', format('no contract %s', a->>'contract_id'));
  END IF;
  IF a ? 'expected_version' AND (a->>'expected_version')::int <> c.version THEN
    PERFORM lifecycle.reject(m, 'SPCF0', 'expected_version',
      format('contract %s is at version %s, not %s (it changed meanwhile)', c.contract_id,
             c.version, a->>'expected_version'));
  END IF;
  RETURN c;
END $$;

CREATE OR REPLACE FUNCTION lifecycle.require_state(m jsonb, c lifecycle.contracts,
                                                   allowed text[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF NOT c.state = ANY (allowed) THEN
    PERFORM lifecycle.reject(m, 'SPIT0', NULL,
      format('contract %s is %s; %s needs it %s', c.contract_id, c.state, m->>'intent',
             array_to_string(allowed, ' or ')));
  END IF;
END $$;

-- After a contract's UPDATE: history (before/after), an outbox event, the result.
CREATE OR REPLACE FUNCTION lifecycle.contract_changed(m jsonb, old lifecycle.contracts,
                                                      event text, extra jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  n lifecycle.contracts;
BEGIN
  SELECT * INTO n FROM lifecycle.contracts
  WHERE customer_id = old.customer_id AND contract_id = old.contract_id;
  PERFORM lifecycle.history_append(m, n.customer_id, 'contract', n.contract_id,
                                   lifecycle.contract_json(old), lifecycle.contract_json(n));
  PERFORM lifecycle.outbox_append(m, n.customer_id, n.contract_id, event,
    jsonb_build_object('contract_id', n.contract_id, 'customer_id', n.customer_id,
                       'state', n.state, 'previous_state', old.state, 'version', n.version)
    || extra);
  RETURN jsonb_build_object('contract_id', n.contract_id, 'state', n.state,
                            'version', n.version);
END $$;

-- A new contract row (state `st`) with its directory entry, history and event. Returns false
-- when the id exists (the caller decides between "same result" and conflict).
CREATE OR REPLACE FUNCTION lifecycle.contract_insert(m jsonb, c lifecycle.contracts, event text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  inserted text;
BEGIN
  INSERT INTO lifecycle.directory (kind, id, customer_id)
  VALUES ('contract', c.contract_id, c.customer_id)
  ON CONFLICT DO NOTHING RETURNING id INTO inserted;
  IF inserted IS NULL THEN
    RETURN false;
  END IF;
  INSERT INTO lifecycle.contracts SELECT c.*;
  PERFORM lifecycle.history_append(m, c.customer_id, 'contract', c.contract_id, NULL,
                                   lifecycle.contract_json(c));
  PERFORM lifecycle.outbox_append(m, c.customer_id, c.contract_id, event,
    jsonb_build_object('contract_id', c.contract_id, 'customer_id', c.customer_id,
                       'state', c.state, 'provider', c.provider, 'tariff', c.tariff,
                       'version', c.version));
  RETURN true;
END $$;

CREATE OR REPLACE FUNCTION lifecycle.require_provider(m jsonb, name text, field text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM lifecycle.providers WHERE provider = name) THEN
    PERFORM lifecycle.reject(m, 'SPNF0', field,
      format('unknown provider %s (register it with RegisterProvider)', name));
  END IF;
END $$;

-- ---- customers, meter points, providers ----

CREATE OR REPLACE FUNCTION lifecycle.register_provider(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO lifecycle.providers (provider, display_name)
  VALUES (a->>'provider', coalesce(a->>'display_name', a->>'provider'))
  ON CONFLICT (provider) DO UPDATE SET display_name = EXCLUDED.display_name
  WHERE a ? 'display_name';
  RETURN jsonb_build_object('provider', a->>'provider');
END $$;

CREATE OR REPLACE FUNCTION lifecycle.register_customer(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  id text := coalesce(a->>'customer_id', gen_random_uuid()::text);
  dig text := lifecycle.digest(a);
  inserted text;
  c lifecycle.customers;
BEGIN
  INSERT INTO lifecycle.customers (customer_id, name, email, phone, iban, args_digest)
  VALUES (id, a->>'name', a->>'email', a->>'phone', a->>'iban', dig)
  ON CONFLICT (customer_id) DO NOTHING RETURNING customer_id INTO inserted;
  IF inserted IS NULL THEN
    c := lifecycle.lock_customer(m, id, false, false);
    IF c.forgotten_at IS NOT NULL THEN
      PERFORM lifecycle.reject(m, 'SPCF0', 'customer_id',
                               format('customer %s was forgotten (ForgetCustomer)', id));
    END IF;
    IF c.args_digest IS DISTINCT FROM dig THEN
      PERFORM lifecycle.reject(m, 'SPCF0', 'customer_id',
                               format('customer %s exists with other arguments', id));
    END IF;
    RETURN jsonb_build_object('customer_id', id);
  END IF;
  IF a ? 'address' THEN
    INSERT INTO lifecycle.addresses (customer_id, address_id, street, postcode, city, country)
    VALUES (id, 'home', a->'address'->>'street', a->'address'->>'postcode',
            a->'address'->>'city', coalesce(a->'address'->>'country', 'DE'));
    UPDATE lifecycle.customers SET address_id = 'home' WHERE customer_id = id;
  END IF;
  PERFORM lifecycle.history_append(m, id, 'customer', id, NULL, lifecycle.customer_json(id));
  PERFORM lifecycle.outbox_append(m, id, id, 'CustomerRegistered',
                                  jsonb_build_object('customer_id', id));
  RETURN jsonb_build_object('customer_id', id);
END $$;

CREATE OR REPLACE FUNCTION lifecycle.register_meter_point(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  c lifecycle.customers := lifecycle.lock_customer(m, a->>'customer_id', false, true);
  id text := coalesce(a->>'meter_point_id', gen_random_uuid()::text);
  dig text := lifecycle.digest(a);
  v_owner text;
  mp lifecycle.meter_points;
  addr text;
BEGIN
  INSERT INTO lifecycle.directory (kind, id, customer_id)
  VALUES ('meter', a->>'meter_id', c.customer_id)
  ON CONFLICT DO NOTHING RETURNING customer_id INTO v_owner;
  IF v_owner IS NULL THEN
    SELECT d.customer_id INTO v_owner FROM lifecycle.directory d
    WHERE d.kind = 'meter' AND d.id = a->>'meter_id';
    IF v_owner <> c.customer_id THEN
      PERFORM lifecycle.reject(m, 'SPCF0', 'meter_id',
        format('meter %s is registered to another customer', a->>'meter_id'));
    END IF;
    SELECT * INTO mp FROM lifecycle.meter_points
    WHERE customer_id = c.customer_id AND meter_id = a->>'meter_id';
    IF mp.args_digest IS DISTINCT FROM dig THEN
      PERFORM lifecycle.reject(m, 'SPCF0', 'meter_id',
        format('meter %s is registered already (as %s) with other arguments', a->>'meter_id',
               mp.meter_point_id));
    END IF;
    RETURN jsonb_build_object('meter_point_id', mp.meter_point_id);
  END IF;
  IF EXISTS (SELECT 1 FROM lifecycle.meter_points
             WHERE customer_id = c.customer_id AND meter_point_id = id) THEN
    PERFORM lifecycle.reject(m, 'SPCF0', 'meter_point_id',
                             format('meter point %s exists with another meter', id));
  END IF;
  IF a ? 'address' THEN
    addr := 'mp:' || id;
    INSERT INTO lifecycle.addresses (customer_id, address_id, street, postcode, city, country)
    VALUES (c.customer_id, addr, a->'address'->>'street', a->'address'->>'postcode',
            a->'address'->>'city', coalesce(a->'address'->>'country', 'DE'));
  END IF;
  INSERT INTO lifecycle.meter_points (customer_id, meter_point_id, meter_id, commodity,
                                     address_id, args_digest)
  VALUES (c.customer_id, id, a->>'meter_id', a->>'commodity', addr, dig)
  RETURNING * INTO mp;
  PERFORM lifecycle.history_append(m, c.customer_id, 'meter_point', id, NULL,
    to_jsonb(mp) - 'args_digest' || jsonb_build_object('address', a->'address'));
  PERFORM lifecycle.outbox_append(m, c.customer_id, c.customer_id, 'MeterPointRegistered',
    jsonb_build_object('customer_id', c.customer_id, 'meter_point_id', id,
                       'commodity', mp.commodity));
  RETURN jsonb_build_object('meter_point_id', id);
END $$;

-- ---- contracts ----

CREATE OR REPLACE FUNCTION lifecycle.create_contract(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  cu lifecycle.customers := lifecycle.lock_customer(m, a->>'customer_id', true, true);
  c lifecycle.contracts;
  prev lifecycle.contracts;
BEGIN
  PERFORM lifecycle.require_provider(m, a->>'provider', 'provider');
  IF a ? 'meter_point_id' AND NOT EXISTS (SELECT 1 FROM lifecycle.meter_points
      WHERE customer_id = cu.customer_id AND meter_point_id = a->>'meter_point_id') THEN
    PERFORM lifecycle.reject(m, 'SPNF0', 'meter_point_id',
      format('customer %s has no meter point %s', cu.customer_id, a->>'meter_point_id'));
  END IF;
  c.customer_id := cu.customer_id;
  c.contract_id := coalesce(a->>'contract_id', gen_random_uuid()::text);
  c.provider := a->>'provider';
  c.tariff := a->>'tariff';
  c.meter_point_id := a->>'meter_point_id';
  c.state := 'draft';
  c.args_digest := lifecycle.digest(a);
  c.version := 1;
  c.created_at := spine.now();
  c.updated_at := spine.now();
  IF NOT lifecycle.contract_insert(m, c, 'ContractCreated') THEN
    SELECT k.* INTO prev FROM lifecycle.directory d
    JOIN lifecycle.contracts k ON k.customer_id = d.customer_id AND k.contract_id = d.id
    WHERE d.kind = 'contract' AND d.id = c.contract_id;
    IF prev.args_digest IS DISTINCT FROM c.args_digest THEN
      PERFORM lifecycle.reject(m, 'SPCF0', 'contract_id',
                               format('contract %s exists with other arguments', c.contract_id));
    END IF;
  END IF;
  RETURN jsonb_build_object('contract_id', c.contract_id, 'state', 'draft');
END $$;

CREATE OR REPLACE FUNCTION lifecycle.request_activation(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  c lifecycle.contracts := lifecycle.lock_contract(m, a);
BEGIN
  PERFORM lifecycle.require_state(m, c, '{draft}');
  UPDATE lifecycle.contracts SET state = 'pending_activation',
    requested_start = lifecycle.arg_date(m, a, 'requested_start'), version = version + 1,
    updated_at = spine.now()
  WHERE customer_id = c.customer_id AND contract_id = c.contract_id;
  RETURN lifecycle.contract_changed(m, c, 'ActivationRequested', '{}');
END $$;

CREATE OR REPLACE FUNCTION lifecycle.confirm_activation(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  c lifecycle.contracts := lifecycle.lock_contract(m, a);
BEGIN
  PERFORM lifecycle.require_state(m, c, '{pending_activation}');
  UPDATE lifecycle.contracts SET state = 'active',
    activation_date = lifecycle.arg_date(m, a, 'activation_date'),
    provider_reference = coalesce(a->>'provider_reference', provider_reference),
    version = version + 1, updated_at = spine.now()
  WHERE customer_id = c.customer_id AND contract_id = c.contract_id;
  RETURN lifecycle.contract_changed(m, c, 'ContractActivated',
    jsonb_build_object('activation_date', a->>'activation_date'));
END $$;

CREATE OR REPLACE FUNCTION lifecycle.cancel_activation(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  c lifecycle.contracts := lifecycle.lock_contract(m, a);
BEGIN
  PERFORM lifecycle.require_state(m, c, '{draft,pending_activation}');
  UPDATE lifecycle.contracts SET state = 'cancelled', cancel_reason = a->>'reason',
    version = version + 1, updated_at = spine.now()
  WHERE customer_id = c.customer_id AND contract_id = c.contract_id;
  RETURN lifecycle.contract_changed(m, c, 'ActivationCancelled',
                                    jsonb_build_object('reason', a->>'reason'));
END $$;

CREATE OR REPLACE FUNCTION lifecycle.request_switch(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  c lifecycle.contracts := lifecycle.lock_contract(m, a);
  sw jsonb;
BEGIN
  PERFORM lifecycle.require_state(m, c, '{active}');
  PERFORM lifecycle.require_provider(m, coalesce(a->>'provider', c.provider), 'provider');
  IF a ? 'new_contract_id' AND EXISTS (SELECT 1 FROM lifecycle.directory
      WHERE kind = 'contract' AND id = a->>'new_contract_id') THEN
    PERFORM lifecycle.reject(m, 'SPCF0', 'new_contract_id',
                             format('contract %s exists already', a->>'new_contract_id'));
  END IF;
  sw := jsonb_build_object('provider', coalesce(a->>'provider', c.provider),
                           'tariff', a->>'tariff',
                           'switch_date', lifecycle.arg_date(m, a, 'switch_date'),
                           'new_contract_id', coalesce(a->>'new_contract_id',
                                                       gen_random_uuid()::text));
  UPDATE lifecycle.contracts SET state = 'switch_pending', pending_switch = sw,
    version = version + 1, updated_at = spine.now()
  WHERE customer_id = c.customer_id AND contract_id = c.contract_id;
  RETURN lifecycle.contract_changed(m, c, 'SwitchRequested', jsonb_build_object('switch', sw))
         || jsonb_build_object('new_contract_id', sw->>'new_contract_id');
END $$;

CREATE OR REPLACE FUNCTION lifecycle.confirm_switch(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  c lifecycle.contracts := lifecycle.lock_contract(m, a);
  sw jsonb;
  on_date date;
  n lifecycle.contracts;
BEGIN
  PERFORM lifecycle.require_state(m, c, '{switch_pending}');
  sw := c.pending_switch;
  on_date := coalesce(lifecycle.arg_date(m, a, 'switch_date'), (sw->>'switch_date')::date);
  IF on_date IS NULL THEN
    PERFORM lifecycle.reject(m, 'SPIA0', 'switch_date',
                             'missing (the switch request named no date either)');
  END IF;
  n.customer_id := c.customer_id;
  n.contract_id := sw->>'new_contract_id';
  n.provider := sw->>'provider';
  n.tariff := sw->>'tariff';
  n.meter_point_id := c.meter_point_id;
  n.state := 'active';
  n.activation_date := on_date;
  n.provider_reference := a->>'provider_reference';
  n.switched_from := c.contract_id;
  n.version := 1;
  n.created_at := spine.now();
  n.updated_at := spine.now();
  IF NOT lifecycle.contract_insert(m, n, 'ContractActivated') THEN
    PERFORM lifecycle.reject(m, 'SPCF0', 'contract_id',
                             format('the new contract %s exists already', n.contract_id));
  END IF;
  UPDATE lifecycle.contracts SET state = 'terminated', termination_date = on_date,
    termination_reason = 'switched', switched_to = n.contract_id, pending_switch = NULL,
    version = version + 1, updated_at = spine.now()
  WHERE customer_id = c.customer_id AND contract_id = c.contract_id;
  RETURN lifecycle.contract_changed(m, c, 'ContractSwitched',
           jsonb_build_object('new_contract_id', n.contract_id, 'switch_date', on_date))
         || jsonb_build_object('new_contract_id', n.contract_id);
END $$;

CREATE OR REPLACE FUNCTION lifecycle.cancel_switch(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  c lifecycle.contracts := lifecycle.lock_contract(m, a);
BEGIN
  PERFORM lifecycle.require_state(m, c, '{switch_pending}');
  UPDATE lifecycle.contracts SET state = 'active', pending_switch = NULL,
    version = version + 1, updated_at = spine.now()
  WHERE customer_id = c.customer_id AND contract_id = c.contract_id;
  RETURN lifecycle.contract_changed(m, c, 'SwitchCancelled',
                                    jsonb_build_object('reason', a->>'reason'));
END $$;

CREATE OR REPLACE FUNCTION lifecycle.request_termination(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  c lifecycle.contracts := lifecycle.lock_contract(m, a);
BEGIN
  PERFORM lifecycle.require_state(m, c, '{active,switch_pending}');
  UPDATE lifecycle.contracts SET state = 'termination_requested',
    termination_reason = a->>'reason',
    termination_requested_date = lifecycle.arg_date(m, a, 'requested_date'),
    pending_switch = NULL, version = version + 1, updated_at = spine.now()
  WHERE customer_id = c.customer_id AND contract_id = c.contract_id;
  RETURN lifecycle.contract_changed(m, c, 'TerminationRequested',
    jsonb_build_object('reason', a->>'reason', 'requested_date', a->>'requested_date'));
END $$;

CREATE OR REPLACE FUNCTION lifecycle.confirm_termination(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  c lifecycle.contracts := lifecycle.lock_contract(m, a);
BEGIN
  PERFORM lifecycle.require_state(m, c, '{termination_requested}');
  UPDATE lifecycle.contracts SET state = 'terminated',
    termination_date = lifecycle.arg_date(m, a, 'termination_date'),
    version = version + 1, updated_at = spine.now()
  WHERE customer_id = c.customer_id AND contract_id = c.contract_id;
  RETURN lifecycle.contract_changed(m, c, 'ContractTerminated',
    jsonb_build_object('termination_date', a->>'termination_date'));
END $$;

CREATE OR REPLACE FUNCTION lifecycle.report_price_increase(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  c lifecycle.contracts := lifecycle.lock_contract(m, a);
  eff date := lifecycle.arg_date(m, a, 'effective_date');
  notice date := lifecycle.arg_date(m, a, 'notice_date');
  p lifecycle.price_changes;
BEGIN
  PERFORM lifecycle.require_state(m, c, '{active,switch_pending,termination_requested}');
  IF notice >= eff THEN
    PERFORM lifecycle.reject(m, 'SPIA0', 'notice_date',
      format('%s is not before effective_date %s', notice, eff));
  END IF;
  p.customer_id := c.customer_id;
  p.price_change_id := gen_random_uuid()::text;
  p.contract_id := c.contract_id;
  p.new_price_cents := (a->>'new_price_cents')::bigint;
  p.unit := a->>'unit';
  p.effective_date := eff;
  p.notice_date := notice;
  p.termination_deadline := eff - 1; -- the special termination right: until the day before
  p.created_at := spine.now();
  INSERT INTO lifecycle.price_changes SELECT p.*;
  PERFORM lifecycle.history_append(m, c.customer_id, 'price_change', p.price_change_id, NULL,
                                   to_jsonb(p));
  PERFORM lifecycle.outbox_append(m, c.customer_id, c.contract_id, 'PriceIncreaseReported',
                                  to_jsonb(p));
  RETURN jsonb_build_object('price_change_id', p.price_change_id, 'contract_id', c.contract_id,
                            'termination_deadline', p.termination_deadline);
END $$;

-- ---- the ledger ----

CREATE OR REPLACE FUNCTION lifecycle.apply_manual_credit(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  c lifecycle.customers := lifecycle.lock_customer(m, a->>'customer_id', false, true);
  cur text := coalesce(a->>'currency', 'EUR');
  dig text := lifecycle.digest(a);
  cr lifecycle.credits;
BEGIN
  IF a ? 'credit_id' THEN
    SELECT * INTO cr FROM lifecycle.credits
    WHERE customer_id = c.customer_id AND credit_id = a->>'credit_id';
    IF cr.credit_id IS NOT NULL THEN
      IF cr.args_digest IS DISTINCT FROM dig THEN
        PERFORM lifecycle.reject(m, 'SPCF0', 'credit_id',
          format('credit %s exists with other arguments', cr.credit_id));
      END IF;
      RETURN jsonb_build_object('credit_id', cr.credit_id, 'balance_cents', cr.balance_cents,
                                'currency', cr.currency);
    END IF;
  END IF;
  IF a ? 'contract_id' AND NOT EXISTS (SELECT 1 FROM lifecycle.contracts
      WHERE customer_id = c.customer_id AND contract_id = a->>'contract_id') THEN
    PERFORM lifecycle.reject(m, 'SPNF0', 'contract_id',
      format('customer %s has no contract %s', c.customer_id, a->>'contract_id'));
  END IF;
  cr.customer_id := c.customer_id;
  cr.credit_id := coalesce(a->>'credit_id', gen_random_uuid()::text);
  cr.contract_id := a->>'contract_id';
  cr.amount_cents := (a->>'amount_cents')::bigint;
  cr.currency := cur;
  -- The customer row is locked: no other credit of this customer commits in between.
  cr.balance_cents := cr.amount_cents + coalesce((SELECT sum(amount_cents) FROM lifecycle.credits
                        WHERE customer_id = c.customer_id AND currency = cur), 0);
  cr.reason := a->>'reason';
  cr.approved_by := a->>'approved_by';
  cr.actor := m->>'actor';
  cr.args_digest := dig;
  cr.created_at := spine.now();
  INSERT INTO lifecycle.credits SELECT cr.*;
  PERFORM lifecycle.history_append(m, c.customer_id, 'credit', cr.credit_id, NULL,
                                   to_jsonb(cr) - 'args_digest');
  PERFORM lifecycle.outbox_append(m, c.customer_id, coalesce(cr.contract_id, c.customer_id),
    'CreditApplied', jsonb_build_object('customer_id', c.customer_id, 'credit_id', cr.credit_id,
      'contract_id', cr.contract_id, 'amount_cents', cr.amount_cents, 'currency', cur,
      'balance_cents', cr.balance_cents));
  RETURN jsonb_build_object('credit_id', cr.credit_id, 'balance_cents', cr.balance_cents,
                            'currency', cur);
END $$;

-- ---- human tasks ----

CREATE OR REPLACE FUNCTION lifecycle.create_task(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  cust text;
  t lifecycle.tasks;
  inserted text;
BEGIN
  SELECT customer_id INTO cust FROM lifecycle.directory
  WHERE kind = 'contract' AND id = a->>'subject';
  IF cust IS NULL THEN
    SELECT customer_id INTO cust FROM lifecycle.customers WHERE customer_id = a->>'subject';
  END IF;
  IF cust IS NULL THEN
    PERFORM lifecycle.reject(m, 'SPNF0', 'subject',
                             format('no contract or customer %s', a->>'subject'));
  END IF;
  t.customer_id := cust;
  t.task_id := coalesce(a->>'task_id', gen_random_uuid()::text);
  t.kind := a->>'kind';
  t.subject := a->>'subject';
  t.status := 'open';
  t.data := coalesce(a->'data', '{}');
  t.due := lifecycle.arg_time(m, a, 'due');
  t.args_digest := lifecycle.digest(a);
  t.created_at := spine.now();
  INSERT INTO lifecycle.directory (kind, id, customer_id) VALUES ('task', t.task_id, cust)
  ON CONFLICT DO NOTHING RETURNING id INTO inserted;
  IF inserted IS NULL THEN
    IF NOT EXISTS (SELECT 1 FROM lifecycle.tasks x JOIN lifecycle.directory d
                   ON d.kind = 'task' AND d.id = x.task_id AND d.customer_id = x.customer_id
                   WHERE x.task_id = t.task_id AND x.args_digest = t.args_digest) THEN
      PERFORM lifecycle.reject(m, 'SPCF0', 'task_id',
                               format('task %s exists with other arguments', t.task_id));
    END IF;
    RETURN jsonb_build_object('task_id', t.task_id, 'status', 'open');
  END IF;
  INSERT INTO lifecycle.tasks SELECT t.*;
  PERFORM lifecycle.history_append(m, cust, 'task', t.task_id, NULL, to_jsonb(t) - 'args_digest');
  PERFORM lifecycle.outbox_append(m, cust, t.subject, 'TaskCreated',
    jsonb_build_object('task_id', t.task_id, 'kind', t.kind, 'subject', t.subject,
                       'customer_id', cust));
  RETURN jsonb_build_object('task_id', t.task_id, 'status', 'open');
END $$;

CREATE OR REPLACE FUNCTION lifecycle.resolve_task(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  cust text;
  t lifecycle.tasks;
  n lifecycle.tasks;
BEGIN
  SELECT customer_id INTO cust FROM lifecycle.directory WHERE kind = 'task' AND id = a->>'task_id';
  SELECT * INTO t FROM lifecycle.tasks
  WHERE customer_id = cust AND task_id = a->>'task_id' FOR UPDATE;
  IF t.task_id IS NULL THEN
    PERFORM lifecycle.reject(m, 'SPNF0', 'task_id', format('no task %s', a->>'task_id'));
  END IF;
  IF t.status <> 'open' THEN
    PERFORM lifecycle.reject(m, 'SPIT0', NULL,
      format('task %s is resolved already (outcome %s)', t.task_id, t.outcome));
  END IF;
  UPDATE lifecycle.tasks SET status = 'resolved', outcome = a->>'outcome',
    resolution = coalesce(a->'data', '{}'), resolved_by = m->>'actor', resolved_at = spine.now()
  WHERE customer_id = t.customer_id AND task_id = t.task_id
  RETURNING * INTO n;
  PERFORM lifecycle.history_append(m, cust, 'task', t.task_id, to_jsonb(t) - 'args_digest',
                                   to_jsonb(n) - 'args_digest');
  PERFORM lifecycle.outbox_append(m, cust, t.subject, 'TaskResolved',
    jsonb_build_object('task_id', t.task_id, 'kind', t.kind, 'subject', t.subject,
                       'outcome', n.outcome, 'data', n.resolution));
  RETURN jsonb_build_object('task_id', t.task_id, 'status', 'resolved', 'outcome', n.outcome);
END $$;

-- ---- queries ----

CREATE OR REPLACE FUNCTION lifecycle.get_contract(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  cust text;
  at_time timestamptz := lifecycle.arg_time(m, a, 'as_of');
  r jsonb;
BEGIN
  SELECT customer_id INTO cust FROM lifecycle.directory
  WHERE kind = 'contract' AND id = a->>'contract_id';
  IF at_time IS NULL THEN
    SELECT lifecycle.contract_json(c) INTO r FROM lifecycle.contracts c
    WHERE c.customer_id = cust AND c.contract_id = a->>'contract_id';
  ELSE
    SELECT h.after || jsonb_build_object('as_of', at_time) INTO r FROM lifecycle.history h
    WHERE h.customer_id = cust AND h.entity = 'contract' AND h.entity_id = a->>'contract_id'
      AND h.at <= at_time
    ORDER BY h.at DESC, h.history_id DESC LIMIT 1;
  END IF;
  IF r IS NULL THEN
    PERFORM lifecycle.reject(m, 'SPNF0', 'contract_id', format('no contract %s%s',
      a->>'contract_id', CASE WHEN at_time IS NULL THEN '' ELSE ' at ' || at_time END));
  END IF;
  RETURN r;
END $$;

CREATE OR REPLACE FUNCTION lifecycle.get_customer(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  id text := a->>'customer_id';
  at_time timestamptz := lifecycle.arg_time(m, a, 'as_of');
  r jsonb;
BEGIN
  IF at_time IS NULL THEN
    r := lifecycle.customer_json(id);
  ELSE
    SELECT h.after INTO r FROM lifecycle.history h
    WHERE h.customer_id = id AND h.entity = 'customer' AND h.at <= at_time
    ORDER BY h.at DESC, h.history_id DESC LIMIT 1;
  END IF;
  IF r IS NULL THEN
    PERFORM lifecycle.reject(m, 'SPNF0', 'customer_id', format('no customer %s%s', id,
      CASE WHEN at_time IS NULL THEN '' ELSE ' at ' || at_time END));
  END IF;
  -- Contracts and balances as of the same time (now when not given).
  r := r || jsonb_build_object(
    'contracts', (SELECT coalesce(jsonb_agg(jsonb_build_object('contract_id', x.entity_id,
                    'state', x.after->>'state', 'provider', x.after->>'provider',
                    'tariff', x.after->>'tariff') ORDER BY x.entity_id), '[]')
                  FROM (SELECT DISTINCT ON (h.entity_id) h.entity_id, h.after
                        FROM lifecycle.history h
                        WHERE h.customer_id = id AND h.entity = 'contract'
                          AND h.at <= coalesce(at_time, 'infinity')
                        ORDER BY h.entity_id, h.at DESC, h.history_id DESC) x),
    'balances', (SELECT coalesce(jsonb_object_agg(b.currency, b.cents), '{}')
                 FROM (SELECT currency, sum(amount_cents) AS cents FROM lifecycle.credits
                       WHERE customer_id = id AND created_at <= coalesce(at_time, 'infinity')
                       GROUP BY currency) b),
    'balance_cents', (SELECT coalesce(sum(amount_cents), 0) FROM lifecycle.credits
                      WHERE customer_id = id AND currency = 'EUR'
                        AND created_at <= coalesce(at_time, 'infinity')));
  IF at_time IS NOT NULL THEN
    r := r || jsonb_build_object('as_of', at_time);
  END IF;
  RETURN r;
END $$;

-- ---- the right to erasure ----

CREATE OR REPLACE FUNCTION lifecycle.scrub_text(t text, secrets text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  s text;
BEGIN
  IF t IS NULL THEN
    RETURN NULL;
  END IF;
  FOREACH s IN ARRAY secrets LOOP
    t := regexp_replace(t, regexp_replace(s, '([.^$*+?()\[\]{}|\\-])', '\\\1', 'g'),
                        '[forgotten]', 'gi');
  END LOOP;
  RETURN t;
END $$;

-- Replaces every occurrence of a secret in the strings of `j`; with `by_key`, also the string
-- values of personal keys (name, email, phone, iban, street, postcode, city).
CREATE OR REPLACE FUNCTION lifecycle.scrub(j jsonb, secrets text[], by_key boolean)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  r jsonb;
  k text;
  v jsonb;
BEGIN
  CASE jsonb_typeof(j)
    WHEN 'object' THEN
      r := '{}';
      FOR k, v IN SELECT * FROM jsonb_each(j) LOOP
        IF by_key AND jsonb_typeof(v) = 'string'
           AND k IN ('name', 'email', 'phone', 'iban', 'street', 'postcode', 'city') THEN
          r := r || jsonb_build_object(k, '[forgotten]');
        ELSE
          r := r || jsonb_build_object(k, lifecycle.scrub(v, secrets, by_key));
        END IF;
      END LOOP;
      RETURN r;
    WHEN 'array' THEN
      SELECT coalesce(jsonb_agg(lifecycle.scrub(e, secrets, by_key) ORDER BY i), '[]') INTO r
      FROM jsonb_array_elements(j) WITH ORDINALITY AS x(e, i);
      RETURN r;
    WHEN 'string' THEN
      RETURN to_jsonb(lifecycle.scrub_text(j #>> '{}', secrets));
    ELSE
      RETURN j;
  END CASE;
END $$;

-- Pseudonymises the customer's personal data wherever it is stored: their rows, the history
-- and outbox payloads, tasks, free-text reasons, and the engine's records of the workflows that
-- acted for them (inputs, results, errors, attributes, step outcomes, signal payloads). Amounts
-- and the ledger stay as they were. SECURITY DEFINER: the only writer allowed to rewrite the
-- append-only tables (through the transaction-local flag `lifecycle.forgetting`).
CREATE OR REPLACE FUNCTION lifecycle.forget_customer(a jsonb, m jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  c lifecycle.customers := lifecycle.lock_customer(m, a->>'customer_id', false, false);
  cid text := c.customer_id;
  secrets text[];
  keys text[];
  wfs text[];
BEGIN
  IF c.forgotten_at IS NOT NULL THEN
    RETURN jsonb_build_object('customer_id', cid, 'forgotten_at', c.forgotten_at);
  END IF;
  SELECT array_agg(DISTINCT s) INTO secrets FROM (
    SELECT unnest(ARRAY[c.name, c.email, c.phone, c.iban]) AS s
    UNION ALL SELECT street FROM lifecycle.addresses WHERE customer_id = cid) x
  WHERE s IS NOT NULL AND length(s) >= 3;
  secrets := coalesce(secrets, '{}');

  UPDATE lifecycle.customers SET name = '[forgotten]', email = '[forgotten]', phone = NULL,
    iban = NULL, args_digest = NULL, forgotten_at = spine.now(), forgotten_reason = a->>'reason',
    version = version + 1, updated_at = spine.now()
  WHERE customer_id = cid;
  UPDATE lifecycle.addresses SET street = NULL, postcode = NULL, city = NULL
  WHERE customer_id = cid;
  UPDATE lifecycle.meter_points SET args_digest = NULL WHERE customer_id = cid;
  UPDATE lifecycle.contracts SET cancel_reason = lifecycle.scrub_text(cancel_reason, secrets),
    termination_reason = lifecycle.scrub_text(termination_reason, secrets),
    pending_switch = lifecycle.scrub(pending_switch, secrets, false), args_digest = NULL
  WHERE customer_id = cid;
  UPDATE lifecycle.tasks SET data = lifecycle.scrub(data, secrets, true),
    resolution = lifecycle.scrub(resolution, secrets, true),
    outcome = lifecycle.scrub_text(outcome, secrets), args_digest = NULL
  WHERE customer_id = cid;
  UPDATE lifecycle.outbox SET payload = lifecycle.scrub(payload, secrets, true),
    last_error = lifecycle.scrub_text(last_error, secrets)
  WHERE customer_id = cid;

  PERFORM set_config('lifecycle.forgetting', cid, true);
  UPDATE lifecycle.history SET before = lifecycle.scrub(before, secrets, true),
    after = lifecycle.scrub(after, secrets, true)
  WHERE customer_id = cid;
  UPDATE lifecycle.credits SET reason = lifecycle.scrub_text(reason, secrets), args_digest = NULL
  WHERE customer_id = cid AND (args_digest IS NOT NULL
                              OR reason IS DISTINCT FROM lifecycle.scrub_text(reason, secrets));
  PERFORM set_config('lifecycle.forgetting', '', true);

  -- The engine's records of workflows that acted for this customer, and their children.
  IF to_regclass('spine.workflows') IS NOT NULL THEN
    SELECT array_agg(k) INTO keys FROM (
      SELECT cid AS k UNION SELECT contract_id FROM lifecycle.contracts WHERE customer_id = cid) x;
    SELECT array_agg(w.id) INTO wfs FROM spine.workflows w
    WHERE w.id IN (SELECT workflow_id FROM lifecycle.history
                   WHERE customer_id = cid AND workflow_id IS NOT NULL)
       OR EXISTS (SELECT 1 FROM unnest(keys) k
                  WHERE w.input::text LIKE '%"' || k || '"%'
                     OR w.attributes::text LIKE '%"' || k || '"%');
    SELECT array_agg(w.id) INTO wfs FROM spine.workflows w
    WHERE w.id = ANY (wfs) OR EXISTS (SELECT 1 FROM unnest(wfs) p WHERE w.id LIKE p || '.%');
    IF wfs IS NOT NULL THEN
      UPDATE spine.workflows SET input = lifecycle.scrub(input, secrets, false),
        result = lifecycle.scrub(result, secrets, false),
        error = lifecycle.scrub(error, secrets, false),
        attributes = lifecycle.scrub(attributes, secrets, false),
        state = lifecycle.scrub_text(state, secrets)
      WHERE id = ANY (wfs);
      UPDATE spine.steps SET result = lifecycle.scrub(result, secrets, false),
        error = lifecycle.scrub(error, secrets, false)
      WHERE workflow_id = ANY (wfs);
      UPDATE spine.signals SET payload = lifecycle.scrub(payload, secrets, false)
      WHERE workflow_id = ANY (wfs);
    END IF;
  END IF;

  PERFORM lifecycle.history_append(m, cid, 'customer', cid,
    jsonb_build_object('customer_id', cid, 'forgotten_at', NULL), lifecycle.customer_json(cid));
  PERFORM lifecycle.outbox_append(m, cid, cid, 'CustomerForgotten',
                                  jsonb_build_object('customer_id', cid));
  RETURN jsonb_build_object('customer_id', cid, 'forgotten_at',
                            (SELECT forgotten_at FROM lifecycle.customers WHERE customer_id = cid));
END $$;
