-- A time argument may be a duration from now (issue 15): CreateTask's `due` = "14d" is 14 days
-- from now on the engine's clock (spine.now(): the manual clock in tests), so a playbook need
-- not compute dates. The C schema (type `deadline`, intents/intent_args.c) decides which
-- arguments may: this function only reads what the check let through.
CREATE OR REPLACE FUNCTION lifecycle.arg_time(m jsonb, a jsonb, field text) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
  v text := a->>field;
  parts text[];
BEGIN
  parts := regexp_match(v, '^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)$');
  IF parts IS NOT NULL THEN
    RETURN spine.now() + parts[1]::numeric * CASE parts[2]
      WHEN 'ms' THEN interval '1 millisecond' WHEN 's' THEN interval '1 second'
      WHEN 'm' THEN interval '1 minute' WHEN 'h' THEN interval '1 hour'
      WHEN 'd' THEN interval '1 day' ELSE interval '7 days' END;
  END IF;
  RETURN v::timestamptz;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_text_representation
THEN
  PERFORM lifecycle.reject(m, 'SPIA0', field,
                           format('"%s" is not a time (expected ISO 8601)', v));
  RETURN NULL;
END $$;
