package store

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/heraldhq/herald"
)

// ContactLabels are a contact's tags and attributes: what segments filter
// on and what campaign templates fill in. Attributes are personal data:
// they are erased with the contact (ON DELETE CASCADE) and never logged.
type ContactLabels struct {
	Tags       []string          `json:"tags"`
	Attributes map[string]string `json:"attributes"`
}

// LabelsPatch changes a contact's labels. AddTags and RemoveTags edit the
// tag set (SetTags, when not nil, replaces it first); an attribute set to
// nil is removed.
type LabelsPatch struct {
	SetTags    *[]string
	AddTags    []string
	RemoveTags []string
	Attributes map[string]*string
}

// Empty reports whether p changes nothing.
func (p LabelsPatch) Empty() bool {
	return p.SetTags == nil && len(p.AddTags) == 0 && len(p.RemoveTags) == 0 && len(p.Attributes) == 0
}

// PatchContactLabels applies p to one of org's contacts (which the caller
// has checked exists, in the same transaction).
func (q *queries) PatchContactLabels(ctx context.Context, org, contact string, p LabelsPatch) error {
	if p.SetTags != nil {
		if _, err := q.q.exec(ctx, `DELETE FROM contact_tags WHERE contact_id = $1 AND org_id = $2`, contact, org); err != nil {
			return fmt.Errorf("replace tags: %w", err)
		}
		if err := q.addTags(ctx, org, contact, *p.SetTags); err != nil {
			return err
		}
	}
	if err := q.addTags(ctx, org, contact, p.AddTags); err != nil {
		return err
	}
	for _, tag := range p.RemoveTags {
		if _, err := q.q.exec(ctx, `DELETE FROM contact_tags WHERE contact_id = $1 AND org_id = $2 AND tag = $3`, contact, org, tag); err != nil {
			return fmt.Errorf("remove tag: %w", err)
		}
	}
	names := make([]string, 0, len(p.Attributes))
	for k := range p.Attributes {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := p.Attributes[k]
		var err error
		if v == nil {
			_, err = q.q.exec(ctx, `DELETE FROM contact_attributes WHERE contact_id = $1 AND org_id = $2 AND name = $3`, contact, org, k)
		} else {
			_, err = q.q.exec(ctx, `INSERT INTO contact_attributes (contact_id, org_id, name, value) VALUES ($1, $2, $3, $4)
				ON CONFLICT (contact_id, name) DO UPDATE SET value = excluded.value`, contact, org, k, *v)
		}
		if err != nil {
			return fmt.Errorf("set attribute: %w", err)
		}
	}
	return nil
}

func (q *queries) addTags(ctx context.Context, org, contact string, tags []string) error {
	for _, tag := range tags {
		if _, err := q.q.exec(ctx, `INSERT INTO contact_tags (contact_id, org_id, tag) VALUES ($1, $2, $3)
			ON CONFLICT (contact_id, tag) DO NOTHING`, contact, org, tag); err != nil {
			return fmt.Errorf("add tag: %w", err)
		}
	}
	return nil
}

// importLabels applies an import row's tags (added) and attributes (set).
func (t *Tx) importLabels(ctx context.Context, org, contact string, r herald.ContactImportRow) error {
	if len(r.Tags) == 0 && len(r.Attributes) == 0 {
		return nil
	}
	p := LabelsPatch{AddTags: r.Tags, Attributes: make(map[string]*string, len(r.Attributes))}
	for k, v := range r.Attributes {
		p.Attributes[k] = &v
	}
	return t.PatchContactLabels(ctx, org, contact, p)
}

// ContactLabels returns one of org's contacts' labels.
func (q *queries) ContactLabels(ctx context.Context, org, contact string) (ContactLabels, error) {
	m, err := q.ContactsLabels(ctx, org, []string{contact})
	if err != nil {
		return ContactLabels{}, err
	}
	if l, ok := m[contact]; ok {
		return l, nil
	}
	return ContactLabels{Tags: []string{}, Attributes: map[string]string{}}, nil
}

// ContactsLabels returns the labels of many of org's contacts at once (a
// fan-out batch), keyed by contact id; contacts without labels are absent.
func (q *queries) ContactsLabels(ctx context.Context, org string, contacts []string) (map[string]ContactLabels, error) {
	out := make(map[string]ContactLabels, len(contacts))
	if len(contacts) == 0 {
		return out, nil
	}
	in, args := inList(2, contacts)
	args = append([]any{org}, args...)
	get := func(id string) ContactLabels {
		l, ok := out[id]
		if !ok {
			l = ContactLabels{Tags: []string{}, Attributes: map[string]string{}}
		}
		return l
	}
	rs, err := q.q.query(ctx, `SELECT contact_id, tag FROM contact_tags WHERE org_id = $1 AND contact_id IN (`+in+`) ORDER BY contact_id, tag`, args...)
	if err != nil {
		return nil, fmt.Errorf("load tags: %w", err)
	}
	for rs.Next() {
		var id, tag string
		if err := rs.Scan(&id, &tag); err != nil {
			rs.Close()
			return nil, fmt.Errorf("load tags: %w", err)
		}
		l := get(id)
		l.Tags = append(l.Tags, tag)
		out[id] = l
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("load tags: %w", err)
	}
	rs, err = q.q.query(ctx, `SELECT contact_id, name, value FROM contact_attributes WHERE org_id = $1 AND contact_id IN (`+in+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("load attributes: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var id, name, value string
		if err := rs.Scan(&id, &name, &value); err != nil {
			return nil, fmt.Errorf("load attributes: %w", err)
		}
		l := get(id)
		l.Attributes[name] = value
		out[id] = l
	}
	return out, rs.Err()
}

// inList returns "$n, $n+1, …" for vs, numbered from first.
func inList[T any](first int, vs []T) (string, []any) {
	ph := make([]string, len(vs))
	args := make([]any, len(vs))
	for i, v := range vs {
		ph[i] = fmt.Sprintf("$%d", first+i)
		args[i] = v
	}
	return strings.Join(ph, ", "), args
}
