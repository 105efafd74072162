package console

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

//go:embed i18n/*.json
var i18nFS embed.FS

// Languages the console speaks; the first is the fallback.
var Languages = []string{"en", "ru"}

// catalogue maps language → key → text. Every language has the same keys
// (TestCataloguesHaveTheSameKeys), and every key a template or page uses
// exists (TestEveryUsedKeyExists).
type catalogue map[string]map[string]string

func loadCatalogue() (catalogue, error) {
	cat := catalogue{}
	for _, l := range Languages {
		b, err := i18nFS.ReadFile("i18n/" + l + ".json")
		if err != nil {
			return nil, fmt.Errorf("console: catalogue %s: %w", l, err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("console: catalogue %s: %w", l, err)
		}
		cat[l] = m
	}
	return cat, nil
}

func (c catalogue) text(lang, key string) string {
	if s, ok := c[lang][key]; ok {
		return s
	}
	if s, ok := c[Languages[0]][key]; ok {
		return s
	}
	return key
}

// lang picks the request's language: the switch's cookie, else the first
// supported language in Accept-Language, else English.
func (c *Console) lang(r *http.Request) string {
	if ck, err := r.Cookie(cookieLang); err == nil && c.cat[ck.Value] != nil {
		return ck.Value
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if c.cat[base] != nil {
			return base
		}
	}
	return Languages[0]
}
