-- The dispatcher: the manifests in force (the last set a reload accepted, replaced whole in one
-- transaction), the history of loads, and what each workflow was routed by.
CREATE TABLE spine.manifest_loads (
  id bigserial PRIMARY KEY,
  loaded_at timestamptz NOT NULL DEFAULT now(),
  loaded_by text NOT NULL,             -- "spine manifests reload", "serve worker 3 (SIGHUP)"
  manifests jsonb NOT NULL             -- [{process, path, hash}]
);

CREATE TABLE spine.manifests (
  process text PRIMARY KEY,
  path text NOT NULL,
  hash text NOT NULL,                  -- sha256 of body
  body text NOT NULL,                  -- the JSON as the file had it
  load_id bigint NOT NULL REFERENCES spine.manifest_loads (id)
);

ALTER TABLE spine.workflows ADD COLUMN subject text, ADD COLUMN bucket int;
CREATE INDEX workflows_experiment ON spine.workflows (process, experiment, variant, created_at)
  WHERE variant IS NOT NULL;
