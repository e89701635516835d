-- Every event an intent appends (lifecycle.outbox) is fanned out by spine.outbox_fan_out, which
-- asked whether a manifest in force lists its type in on_events by casting every manifest's
-- body from text to jsonb: each intent parsed all the manifests, a cost that grew with their
-- number and size (issue 16; ~8 % of an ApplyManualCredit's database time with five small
-- manifests). The list is now kept beside the body, parsed once when a manifest is loaded.
ALTER TABLE spine.manifests
  ADD COLUMN on_events jsonb GENERATED ALWAYS AS (body::jsonb -> 'on_events') STORED;

CREATE OR REPLACE FUNCTION spine.outbox_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO spine.outbox_deliveries (subscriber, event_id, customer_id, ordering_key)
  SELECT s.name, NEW.event_id, NEW.customer_id, NEW.ordering_key
  FROM spine.outbox_subscribers s
  WHERE (s.events IS NULL OR NEW.event_type = ANY (s.events))
    AND (s.kind <> 'start' OR EXISTS (SELECT 1 FROM spine.manifests m
                                      WHERE m.on_events ? NEW.event_type));
  IF NOT FOUND THEN
    UPDATE lifecycle.outbox SET status = 'delivered', delivered_at = now()
    WHERE customer_id = NEW.customer_id AND event_id = NEW.event_id;
  END IF;
  RETURN NULL;
END $$;
