-- Organisations and people as API (issue 12). See docs/platform.md.

-- An organisation is suspended (its keys and sessions answer 403, its queue
-- is held) or deleted (its personal data erased; the row stays so its
-- ledger, accounts and actions keep their organisation).
ALTER TABLE orgs ADD COLUMN suspended_at timestamptz;
ALTER TABLE orgs ADD COLUMN deleted_at timestamptz;

-- Platform operators act above organisations (create, suspend, delete). A
-- platform operator is a principal of one organisation (its keys and
-- sessions authenticate there), listed here.
CREATE TABLE platform_operators (
    org_id     text NOT NULL REFERENCES orgs(id),
    principal  text NOT NULL CHECK (principal <> ''),
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    PRIMARY KEY (org_id, principal)
);
-- Existing deployments: the bootstrap key's principal becomes the platform operator.
INSERT INTO platform_operators (org_id, principal, created_at, created_by)
SELECT org_id, principal, min(created_at), 'migration:0011' FROM api_keys
WHERE principal = 'bootstrap-admin' AND name = 'bootstrap' AND revoked_at IS NULL
GROUP BY org_id, principal;

-- People invited by Telegram id. A person's principal is "tg:<telegram id>";
-- their sessions carry the row's id, so a revoked row (revoked_at set) ends
-- every session issued for it on the next request, on every replica.
CREATE TABLE people (
    id          text PRIMARY KEY,
    org_id      text NOT NULL REFERENCES orgs(id),
    telegram_id text NOT NULL,
    principal   text NOT NULL,
    name        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    created_by  text NOT NULL,
    revoked_at  timestamptz
);
CREATE UNIQUE INDEX people_live ON people (org_id, principal) WHERE revoked_at IS NULL;
CREATE INDEX people_org ON people (org_id, created_at, id);

-- Consent history: every grant, change and withdrawal of a purpose's
-- consent, kept by triggers so every path that writes consents records it.
-- Erasing a contact deletes its history (the ledger keeps the audit facts).
CREATE TABLE consent_events (
    id         bigserial PRIMARY KEY,
    contact_id text NOT NULL,
    purpose    text NOT NULL,
    event      text NOT NULL CHECK (event IN ('granted', 'changed', 'withdrawn', 'opted_out')),
    basis      text NOT NULL DEFAULT '',
    source     text NOT NULL DEFAULT '',
    at         timestamptz NOT NULL
);
CREATE INDEX consent_events_contact ON consent_events (contact_id, id);

CREATE FUNCTION consent_events_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO consent_events (contact_id, purpose, event, basis, source, at)
        VALUES (NEW.contact_id, NEW.purpose, 'granted', NEW.basis, NEW.source, NEW.granted_at);
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.basis IS DISTINCT FROM OLD.basis OR NEW.source IS DISTINCT FROM OLD.source OR NEW.granted_at IS DISTINCT FROM OLD.granted_at THEN
            INSERT INTO consent_events (contact_id, purpose, event, basis, source, at)
            VALUES (NEW.contact_id, NEW.purpose, 'changed', NEW.basis, NEW.source, NEW.granted_at);
        END IF;
        RETURN NEW;
    END IF;
    INSERT INTO consent_events (contact_id, purpose, event, basis, source, at)
    SELECT OLD.contact_id, OLD.purpose, 'withdrawn', OLD.basis, '', c.updated_at FROM contacts c WHERE c.id = OLD.contact_id;
    RETURN OLD;
END;
$$;
CREATE TRIGGER consents_history AFTER INSERT OR UPDATE OR DELETE ON consents
    FOR EACH ROW EXECUTE FUNCTION consent_events_record();

CREATE FUNCTION contact_opt_out_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM consent_events WHERE contact_id = OLD.id;
        RETURN OLD;
    END IF;
    IF OLD.opted_out_at IS NULL AND NEW.opted_out_at IS NOT NULL THEN
        INSERT INTO consent_events (contact_id, purpose, event, source, at)
        VALUES (NEW.id, '*', 'opted_out', NEW.opt_out_source, NEW.opted_out_at);
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER contacts_opt_out_history AFTER UPDATE OF opted_out_at ON contacts
    FOR EACH ROW EXECUTE FUNCTION contact_opt_out_record();
CREATE TRIGGER contacts_erase_history AFTER DELETE ON contacts
    FOR EACH ROW EXECUTE FUNCTION contact_opt_out_record();

-- The contacts listing pages by id within an organisation.
CREATE INDEX contacts_org_id ON contacts (org_id, id);
