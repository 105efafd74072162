-- Organisations and people as API (issue 12; SQLite, times are INTEGER
-- microseconds). See docs/platform.md and the PostgreSQL twin.

ALTER TABLE orgs ADD COLUMN suspended_at INTEGER;
ALTER TABLE orgs ADD COLUMN deleted_at INTEGER;

CREATE TABLE platform_operators (
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    principal  TEXT NOT NULL CHECK (principal <> ''),
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (org_id, principal)
);
INSERT INTO platform_operators (org_id, principal, created_at, created_by)
SELECT org_id, principal, min(created_at), 'migration:0011' FROM api_keys
WHERE principal = 'bootstrap-admin' AND name = 'bootstrap' AND revoked_at IS NULL
GROUP BY org_id, principal;

CREATE TABLE people (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    telegram_id TEXT NOT NULL,
    principal   TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    revoked_at  INTEGER
);
CREATE UNIQUE INDEX people_live ON people (org_id, principal) WHERE revoked_at IS NULL;
CREATE INDEX people_org ON people (org_id, created_at, id);

CREATE TABLE consent_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    event      TEXT NOT NULL CHECK (event IN ('granted', 'changed', 'withdrawn', 'opted_out')),
    basis      TEXT NOT NULL DEFAULT '',
    source     TEXT NOT NULL DEFAULT '',
    at         INTEGER NOT NULL
);
CREATE INDEX consent_events_contact ON consent_events (contact_id, id);

CREATE TRIGGER consents_history_insert AFTER INSERT ON consents BEGIN
    INSERT INTO consent_events (contact_id, purpose, event, basis, source, at)
    VALUES (NEW.contact_id, NEW.purpose, 'granted', NEW.basis, NEW.source, NEW.granted_at);
END;
CREATE TRIGGER consents_history_update AFTER UPDATE ON consents
WHEN NEW.basis IS NOT OLD.basis OR NEW.source IS NOT OLD.source OR NEW.granted_at IS NOT OLD.granted_at BEGIN
    INSERT INTO consent_events (contact_id, purpose, event, basis, source, at)
    VALUES (NEW.contact_id, NEW.purpose, 'changed', NEW.basis, NEW.source, NEW.granted_at);
END;
CREATE TRIGGER consents_history_delete AFTER DELETE ON consents BEGIN
    INSERT INTO consent_events (contact_id, purpose, event, basis, source, at)
    SELECT OLD.contact_id, OLD.purpose, 'withdrawn', OLD.basis, '', c.updated_at FROM contacts c WHERE c.id = OLD.contact_id;
END;
CREATE TRIGGER contacts_opt_out_history AFTER UPDATE OF opted_out_at ON contacts
WHEN OLD.opted_out_at IS NULL AND NEW.opted_out_at IS NOT NULL BEGIN
    INSERT INTO consent_events (contact_id, purpose, event, source, at)
    VALUES (NEW.id, '*', 'opted_out', NEW.opt_out_source, NEW.opted_out_at);
END;
CREATE TRIGGER contacts_erase_history AFTER DELETE ON contacts BEGIN
    DELETE FROM consent_events WHERE contact_id = OLD.id;
END;

CREATE INDEX contacts_org_id ON contacts (org_id, id);
