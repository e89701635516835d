-- A workflow's business outcome (issue 15): the name its playbook gave with ctx.outcome("read"),
-- which `spine experiments` counts per variant, since a process's endings are often all
-- `completed`. NULL when the playbook named none.
ALTER TABLE spine.workflows ADD COLUMN outcome text;
