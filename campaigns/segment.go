package campaigns

import (
	"fmt"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

// Filter is a segment's definition: every condition set must hold (AND);
// within a list, any value matches (OR), except Tags, which must all be
// present. An empty filter matches every contact of the organisation.
type Filter struct {
	Tags        []string `json:"tags,omitempty"`
	ExcludeTags []string `json:"exclude_tags,omitempty"`
	Languages   []string `json:"languages,omitempty"`
	Timezones   []string `json:"timezones,omitempty"`
	// Consent conditions per purpose: "granted" (a legal basis is
	// recorded) or "absent".
	Consent []ConsentCondition `json:"consent,omitempty"`
	// Sources match the source of any recorded legal basis.
	Sources        []string   `json:"sources,omitempty"`
	ImportedAfter  *time.Time `json:"imported_after,omitempty"`
	ImportedBefore *time.Time `json:"imported_before,omitempty"`
	// LastContactedBefore keeps contacts not sent anything since then
	// (including never); LastContactedAfter those sent something since.
	LastContactedBefore *time.Time `json:"last_contacted_before,omitempty"`
	LastContactedAfter  *time.Time `json:"last_contacted_after,omitempty"`
	// Attributes must equal these values.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// ConsentCondition is one consent test of a filter.
type ConsentCondition struct {
	Purpose string `json:"purpose"`
	State   string `json:"state"` // granted | absent
}

// Segment is a saved, named filter.
type Segment struct {
	ID        string    `json:"id"`
	Org       string    `json:"org"`
	Name      string    `json:"name"`
	Filter    Filter    `json:"filter"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// maxFilterValues bounds each list of a filter: a filter is a query, not
// an upload.
const maxFilterValues = 100

// ValidTag reports whether s can be a contact tag (see herald.ValidTag).
func ValidTag(s string) bool { return herald.ValidTag(s) }

// ValidAttributeValue reports whether s can be an attribute value.
func ValidAttributeValue(s string) bool { return herald.ValidAttributeValue(s) }

// Validate returns the filter's field errors.
func (f Filter) Validate() []herald.FieldError {
	var fe []herald.FieldError
	add := func(field, msg string) { fe = append(fe, herald.FieldError{Field: "filter." + field, Message: msg}) }
	list := func(name string, vs []string, ok func(string) bool, msg string) {
		if len(vs) > maxFilterValues {
			add(name, fmt.Sprintf("at most %d values", maxFilterValues))
		}
		for i, v := range vs {
			if !ok(v) {
				add(fmt.Sprintf("%s[%d]", name, i), msg)
			}
		}
	}
	list("tags", f.Tags, ValidTag, "must be a tag (1–64 characters, no commas or control characters)")
	list("exclude_tags", f.ExcludeTags, ValidTag, "must be a tag (1–64 characters, no commas or control characters)")
	list("languages", f.Languages, herald.ValidLanguage, "must be a language tag such as \"en\"")
	list("timezones", f.Timezones, herald.ValidTimezone, "must be an IANA time zone")
	list("sources", f.Sources, func(s string) bool { return s != "" && len(s) <= 500 && ValidAttributeValue(s) }, "must be 1–500 characters")
	if len(f.Consent) > len(herald.Purposes)*2 {
		add("consent", "too many conditions")
	}
	for i, c := range f.Consent {
		if !herald.ValidPurpose(c.Purpose) {
			add(fmt.Sprintf("consent[%d].purpose", i), "must be one of "+strings.Join(herald.Purposes, ", "))
		}
		if c.State != "granted" && c.State != "absent" {
			add(fmt.Sprintf("consent[%d].state", i), "must be granted or absent")
		}
	}
	if f.ImportedAfter != nil && f.ImportedBefore != nil && !f.ImportedBefore.After(*f.ImportedAfter) {
		add("imported_before", "must be after imported_after")
	}
	if len(f.Attributes) > maxFilterValues {
		add("attributes", fmt.Sprintf("at most %d attributes", maxFilterValues))
	}
	for k, v := range f.Attributes {
		if !ValidAttributeName(k) {
			add("attributes."+k, "must be a lowercase attribute name")
		} else if !ValidAttributeValue(v) {
			add("attributes."+k, "must be at most 1024 characters of text")
		}
	}
	return fe
}

// ValidSegmentName reports whether s can name a segment or a campaign.
func ValidSegmentName(s string) bool {
	return strings.TrimSpace(s) != "" && len(s) <= 200 && ValidAttributeValue(s) && !strings.ContainsAny(s, "\r\n")
}
