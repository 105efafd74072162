-- Access control: Casbin RBAC with domains (domain = organisation). The
-- default permissions of each role are code (access/roles.go, model.conf);
-- the database holds who holds which role where. See docs/access.md.

-- A principal holds a role in one organisation, optionally restricted to
-- one resource (scope "accounts/<id>"); '*' is unrestricted.
CREATE TABLE access_bindings (
    org_id     text NOT NULL REFERENCES orgs(id),
    principal  text NOT NULL CHECK (principal <> ''),
    role       text NOT NULL,         -- validated by access.ValidateBinding
    scope      text NOT NULL DEFAULT '*' CHECK (scope <> ''),
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    PRIMARY KEY (org_id, principal, role, scope)
);

-- One row: a counter bumped in every transaction that changes a binding, so
-- replicas detect a change with one tiny query (the fallback when a
-- herald_access notification is missed).
CREATE TABLE access_version (
    id      integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO access_version (id, version) VALUES (1, 1);

-- Backfill: before bindings, an API key's role was its holder's role. Every
-- unrevoked key becomes an unrestricted binding of its principal, so no
-- caller loses or gains a permission when the Casbin enforcer takes over.
-- (These bindings are not ledger entries; the keys' creation already is.)
INSERT INTO access_bindings (org_id, principal, role, scope, created_at, created_by)
SELECT org_id, principal, role, '*', min(created_at), 'migration:0003'
FROM api_keys
WHERE revoked_at IS NULL
GROUP BY org_id, principal, role;
