-- Group commit sends the same statement of many workflows as one statement over arrays (issue
-- 16; runtime/store/merge.c): the steps of 500 workflows are one INSERT, not 500. Such a statement
-- checks every claim it writes under at once; when one of them is lost it raises SPLC0 for the
-- whole batch, which the store then sends again statement by statement, so that the workflow
-- whose claim moved on gets its own error (spine.lost_claim) and the others commit.
CREATE FUNCTION spine.lost_claims(lost bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% claims of this batch are no longer this worker''s', lost
    USING ERRCODE = 'SPLC0';
END $$;
