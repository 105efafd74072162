package store

import (
	"context"
	"fmt"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
)

// Erasure of a person (GDPR Art. 17).
//
// A person's chat id is copied into more places than the contact row: the
// target of every action addressed to them (by contact id or by the bare
// chat id), the receipts of delivered sends, queued jobs, stored decision
// inputs and the ledger payloads. After ErasePerson commits, no row of the
// organisation MUST hold the chat id, and the ledger MUST still verify
// (entries hold only salted payload hashes and keyed references, so deleting
// payloads and their salts leaves every hash intact).

// ErasureReport says what ErasePerson removed.
type ErasureReport struct {
	PayloadsDeleted  int `json:"payloads_deleted"`
	ActionsScrubbed  int `json:"actions_scrubbed"`
	ActionsCancelled int `json:"actions_cancelled"`
}

// ErasedTarget replaces the target and receipt chat id of an erased
// person's actions.
const ErasedTarget = "erased"

// DetailContactErased is the action_events detail of a send cancelled
// because its recipient was erased.
const DetailContactErased = "contact_erased"

// ErasePerson erases one of org's contacts everywhere, in this transaction:
//
//  1. their sends still waiting (pending approval or scheduled) are
//     cancelled, each with its event and action.cancelled entry, so the API
//     and the ledger tell why they will never go out;
//  2. EraseContact deletes the ledger payloads naming them (tombstoned),
//     their stored decision inputs, and records contact.erased;
//  3. every action addressed to them, by contact id or by chat id, loses its
//     content, its target and its receipt's chat id; decision inputs naming
//     the chat id go too;
//  4. DeleteContact removes queued jobs, consents and the contact row.
//
// A send already in flight (status sending) is not cancelled: the worker
// has called Telegram. Its receipt is scrubbed when it is recorded only if
// erasure runs again; see docs/audit.md §7.
func (t *Tx) ErasePerson(ctx context.Context, org, contactID string) (ErasureReport, error) {
	var rep ErasureReport
	c, err := t.GetContact(ctx, org, contactID)
	if err != nil {
		return rep, err
	}
	// The actions addressed to the person: linked to the contact, or
	// addressed by their chat id (or the contact id as a bare target)
	// without the link.
	const addressed = `org_id = $1 AND (contact_id = $2 OR target = $3 OR target = $2)`
	rows, err := t.q.query(ctx, `SELECT id FROM actions WHERE `+addressed+` AND status IN ($4, $5) ORDER BY id`,
		org, c.ID, c.ChatID, string(herald.StatusPendingApproval), string(herald.StatusScheduled))
	if err != nil {
		return rep, fmt.Errorf("erase contact %q: queued sends: %w", contactID, err)
	}
	var queued []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return rep, fmt.Errorf("erase contact %q: queued sends: %w", contactID, err)
		}
		queued = append(queued, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("erase contact %q: queued sends: %w", contactID, err)
	}
	for _, id := range queued {
		if _, err := t.Transition(ctx, org, id, Transition{To: herald.StatusCancelled, Actor: ledger.GenesisActor, Detail: DetailContactErased}); err != nil {
			return rep, fmt.Errorf("erase contact %q: cancel action %s: %w", contactID, id, err)
		}
		if err := t.DeleteJob(ctx, id); err != nil {
			return rep, fmt.Errorf("erase contact %q: %w", contactID, err)
		}
		rep.ActionsCancelled++
	}
	if rep.PayloadsDeleted, err = t.EraseContact(ctx, org, c.ID); err != nil {
		return rep, err
	}
	receipt := `CASE WHEN receipt IS NULL THEN NULL ELSE (receipt - 'migrated_to') || '{"chat_id":"erased"}'::jsonb END`
	chatOfInput := `input->'target'->>'chat_id'`
	if t.d.name != "postgres" {
		receipt = `CASE WHEN receipt IS NULL THEN NULL ELSE json_set(json_remove(receipt, '$.migrated_to'), '$.chat_id', 'erased') END`
		chatOfInput = `json_extract(input, '$.target.chat_id')`
	}
	// The facade's call hashes are derived from the text and the chat.
	if _, err := t.q.exec(ctx, `DELETE FROM facade_calls WHERE action_id IN (SELECT id FROM actions WHERE `+addressed+`)`,
		org, c.ID, c.ChatID); err != nil {
		return rep, fmt.Errorf("erase contact %q: facade calls: %w", contactID, err)
	}
	// Updates the person sent, waiting for a facade bot (their messages).
	if _, err := t.q.exec(ctx, `DELETE FROM facade_updates WHERE org_id = $1 AND chat_id = $2 AND chat_id <> ''`, org, c.ChatID); err != nil {
		return rep, fmt.Errorf("erase contact %q: facade updates: %w", contactID, err)
	}
	n, err := t.q.exec(ctx, `UPDATE actions SET content = '{}', target = $4, receipt = `+receipt+`, updated_at = $5
		WHERE `+addressed, org, c.ID, c.ChatID, ErasedTarget, t.now())
	if err != nil {
		return rep, fmt.Errorf("erase contact %q: actions: %w", contactID, err)
	}
	rep.ActionsScrubbed = int(n)
	if _, err := t.q.exec(ctx, `DELETE FROM decision_records WHERE org_id = $1 AND `+chatOfInput+` IN ($2, $3)`, org, c.ChatID, c.ID); err != nil {
		return rep, fmt.Errorf("erase contact %q: decision inputs: %w", contactID, err)
	}
	if err := t.DeleteContact(ctx, org, c.ID); err != nil {
		return rep, err
	}
	return rep, nil
}
