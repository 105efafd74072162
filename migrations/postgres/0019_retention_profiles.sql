-- Retention profiles (store.RetentionProfiles, docs/audit.md §7.3): the
-- profile an organisation applied ('' once the configuration is set by
-- hand) and the minimal-fields rule (contacts hold no username, language
-- or timezone; enforced on import and update).
ALTER TABLE org_retention ADD COLUMN profile text NOT NULL DEFAULT '';
ALTER TABLE org_retention ADD COLUMN minimal_fields boolean NOT NULL DEFAULT false;
