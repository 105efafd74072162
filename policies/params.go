package policies

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"
)

// DefaultParams returns the default bundle's data.herald.params.
func DefaultParams() (map[string]any, error) {
	var data struct {
		Herald struct {
			Params map[string]any `json:"params"`
		} `json:"herald"`
	}
	if err := json.Unmarshal(DefaultBundle().Files["data.json"], &data); err != nil {
		return nil, fmt.Errorf("default bundle data.json: %w", err)
	}
	return data.Herald.Params, nil
}

// ParamProblem is one invalid override, by its dotted path.
type ParamProblem struct {
	Path    string
	Message string
}

// ValidateParams checks an organisation's parameter overrides against the
// defaults: every key must exist there, with a value of the same JSON type
// (objects are checked key by key, so an override may name a single cap).
func ValidateParams(defaults, overrides map[string]any) []ParamProblem {
	var out []ParamProblem
	var walk func(path string, def, got map[string]any)
	walk = func(path string, def, got map[string]any) {
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := strings.TrimPrefix(path+"."+k, ".")
			d, ok := def[k]
			if !ok {
				out = append(out, ParamProblem{p, "is not a parameter of the policy bundle"})
				continue
			}
			v := got[k]
			if dm, ok := d.(map[string]any); ok {
				vm, ok := v.(map[string]any)
				if !ok {
					out = append(out, ParamProblem{p, "must be an object"})
					continue
				}
				walk(p, dm, vm)
				continue
			}
			if want, have := jsonKind(d), jsonKind(v); want != have {
				out = append(out, ParamProblem{p, "must be " + want})
			}
		}
	}
	walk("", defaults, overrides)
	return out
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case float64, json.Number, int:
		return "a number"
	case bool:
		return "true or false"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	case nil:
		return "null"
	}
	return "a JSON value"
}

// BundleParams returns b's data.herald.params as the engine sees them: every
// data.json mounted at its directory and deep-merged (so a bundle may keep
// its params in data.json at the root or in herald/params/data.json). An
// organisation's overrides MUST be validated against its active bundle's
// params, not the default bundle's: a custom bundle may add or drop
// parameters.
func BundleParams(b Bundle) (map[string]any, error) {
	root := map[string]any{}
	for _, p := range slices.Sorted(maps.Keys(b.Files)) {
		if path.Base(p) != "data.json" {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(b.Files[p]))
		dec.UseNumber()
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", p, err)
		}
		node := root
		if dir := path.Dir(p); dir != "." {
			for _, seg := range strings.Split(dir, "/") {
				child, ok := node[seg].(map[string]any)
				if !ok {
					child = map[string]any{}
					node[seg] = child
				}
				node = child
			}
		}
		if err := mergeData(node, doc); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", p, err)
		}
	}
	h, _ := root["herald"].(map[string]any)
	params, _ := h["params"].(map[string]any)
	if params == nil {
		params = map[string]any{}
	}
	return params, nil
}
