package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Strict reading of export lines.
//
// RFC 8785 canonicalises I-JSON (RFC 7493), which forbids duplicate member
// names. encoding/json is lenient in three ways that would let a forged line
// verify: it keeps the LAST of two members with the same name, it matches
// member names to struct fields case-insensitively ("ACTOR" fills Actor), and
// it ignores unknown members. A reader shown the first "actor" would then see
// a value that is not the one hashed. So every line is checked before it is
// decoded:
//
//   - a line MUST NOT repeat a member name in any object, at any depth
//     (attrs and refs included);
//   - a line's top-level members, and the members of a header's anchor, MUST
//     be exactly the documented field names of its record type (byte-exact,
//     so a case variant is an unknown field).
//
// Object keys inside attrs and refs are data, not field names: "a" and "A"
// there are two different keys, both hashed.

// lineFields are the member names each record type may carry.
var lineFields = map[string]map[string]bool{
	RecordHeader:     set("type", "version", "org", "origin", "from", "to", "anchor"),
	RecordEntry:      set("type", "seq", "org", "time", "kind", "actor", "refs", "attrs", "payload_hash", "prev_hash", "hash"),
	RecordPayload:    set("type", "hash", "salt", "data", "purged"),
	RecordCheckpoint: set("type", "size", "note", "consistency"),
}

var anchorFields = set("size", "hash", "note", "range", "inclusion")

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// checkStrict returns an error naming the offending member (and the entry's
// seq when the line has one) when b is not a strict export line. Syntax
// errors are left to the decoder, which reports them with more context.
func checkStrict(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	tok, err := d.Token()
	if err != nil {
		return nil
	}
	if tok != json.Delim('{') {
		return nil
	}
	type member struct {
		name string
		raw  json.RawMessage
	}
	var members []member
	seen := map[string]bool{}
	var dup string
	for d.More() {
		kt, err := d.Token()
		if err != nil {
			return nil
		}
		k, _ := kt.(string)
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			return nil
		}
		if seen[k] && dup == "" {
			dup = k
		}
		seen[k] = true
		members = append(members, member{k, raw})
	}
	// Name the seq of an entry line in every complaint, so the report
	// points at the entry (the first "seq" member: even a duplicated seq is
	// named as written first).
	where := ""
	var typ string
	for _, m := range members {
		if m.name == "seq" && where == "" {
			where = fmt.Sprintf("entry seq %s: ", bytes.TrimSpace(m.raw))
		}
		if m.name == "type" && typ == "" {
			_ = json.Unmarshal(m.raw, &typ)
		}
	}
	if dup != "" {
		return fmt.Errorf("%sduplicate member %q (I-JSON forbids duplicate names; a reader could be shown a value that was not hashed)", where, dup)
	}
	allowed := lineFields[typ]
	if allowed == nil {
		return nil // unknown or missing type: the decoder reports it
	}
	for _, m := range members {
		if !allowed[m.name] {
			return fmt.Errorf("%sunknown member %q in a %s line (member names are exact and case-sensitive)", where, m.name, typ)
		}
		if err := checkNoDuplicates(m.raw); err != nil {
			return fmt.Errorf("%s%s: %w", where, m.name, err)
		}
		if typ == RecordHeader && m.name == "anchor" {
			if err := checkAnchorFields(m.raw); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkNoDuplicates walks one JSON value and fails on the first object that
// repeats a member name.
func checkNoDuplicates(raw []byte) error {
	if len(raw) == 0 || (raw[0] != '{' && raw[0] != '[') {
		return nil // scalars: nothing to check, and the fast way out
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	err := walkNoDuplicates(d)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func walkNoDuplicates(d *json.Decoder) error {
	tok, err := d.Token()
	if err != nil {
		return nil // syntax: the decoder reports it
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for d.More() {
			kt, err := d.Token()
			if err != nil {
				return nil
			}
			k, _ := kt.(string)
			if seen[k] {
				return fmt.Errorf("duplicate member %q", k)
			}
			seen[k] = true
			if err := walkNoDuplicates(d); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		_, _ = d.Token()
	case json.Delim('['):
		for d.More() {
			if err := walkNoDuplicates(d); err != nil {
				return err
			}
		}
		_, _ = d.Token()
	}
	return nil
}

func checkAnchorFields(raw []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil
	}
	for k := range m {
		if !anchorFields[k] {
			return fmt.Errorf("header anchor: unknown member %q (member names are exact and case-sensitive)", k)
		}
	}
	return nil
}
