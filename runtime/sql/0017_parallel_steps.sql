-- Branches of ctx.parallel (issue 15 §1): a step belongs to a strand of its workflow, the main
-- body or a branch, and is numbered within it, so that a replay matches each branch's steps by
-- (branch, branch_seq) whichever branch's step committed first. `seq` stays the workflow-wide
-- key (the order of commits: signals' consumed_seq, incidents, retry and skip name it).
-- A step of the main body has no branch; a row written before this migration has no
-- branch_seq either: its number is its seq, so old histories replay as they did.
ALTER TABLE spine.steps
  ADD COLUMN branch text,          -- the branch's path ("3.a", "3.a/2.x"), NULL: the main body
  ADD COLUMN branch_seq int;       -- its number within the branch (NULL: seq)
