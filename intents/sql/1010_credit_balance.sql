-- A credit's running balance from the customer's last entry, not from all of them (issue 16).
-- ApplyManualCredit summed every earlier credit of the customer in the currency, holding the
-- customer's lock meanwhile: each credit cost more than the one before, and a customer with a
-- long ledger serialised its credits behind ever longer scans. Amounts are positive (CHECK) and
-- lifecycle.credits is append-only (triggers), so each entry's balance_cents is the sum up to it
-- and the greatest is the balance so far: one descent of credits_balance. tests/spec/intents/
-- race_spec.lua checks the ledger (every running balance once, the greatest = the sum) under
-- concurrent credits; customers_spec.lua the balances returned.
CREATE INDEX credits_balance ON lifecycle.credits (customer_id, currency, balance_cents);

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
  -- The customer row is locked: no other credit of this customer commits in between. Amounts
  -- are positive and the ledger append-only, so the balance so far is the greatest one.
  cr.balance_cents := cr.amount_cents + coalesce((SELECT max(balance_cents) FROM lifecycle.credits
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
