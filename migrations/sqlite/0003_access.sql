-- Access control (SQLite; times are INTEGER microseconds): Casbin RBAC with
-- domains (domain = organisation). The default permissions of each role are
-- code (access/roles.go, model.conf); the database holds who holds which
-- role where. See docs/access.md.

-- A principal holds a role in one organisation, optionally restricted to
-- one resource (scope "accounts/<id>"); '*' is unrestricted.
CREATE TABLE access_bindings (
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    principal  TEXT NOT NULL CHECK (principal <> ''),
    role       TEXT NOT NULL,         -- validated by access.ValidateBinding
    scope      TEXT NOT NULL DEFAULT '*' CHECK (scope <> ''),
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (org_id, principal, role, scope)
);

-- One row: a counter bumped in every transaction that changes a binding, so
-- replicas detect a change with one tiny query (the fallback when a
-- herald_access notification is missed).
CREATE TABLE access_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
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
