-- A merged statement that answers a row per op (runtime/store/merge.h: an intent step's, its
-- intent's set form and the steps' rows together) checks that it wrote a row for every op it
-- carries. An intent's set form that answers fewer rows than it was given would leave ops without
-- their step; this raises instead, and the store then sends the ops one by one.
CREATE FUNCTION spine.merged_rows(expected bigint, got bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF expected IS DISTINCT FROM got THEN
    RAISE EXCEPTION 'a merged statement wrote % rows for % ops', got, expected
      USING ERRCODE = 'XX000';
  END IF;
  RETURN true;
END $$;
