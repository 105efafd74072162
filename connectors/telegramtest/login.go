package telegramtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
)

// LoginWidgetHash signs Telegram Login Widget data as Telegram does: the
// HMAC-SHA-256 of the fields' data-check-string ("key=value" lines in key
// order) keyed with SHA-256 of the login bot's token. Tests use it to play
// the widget, whose real counterpart runs on telegram.org.
func LoginWidgetHash(fields map[string]string, botToken string) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = k + "=" + fields[k]
	}
	secret := sha256.Sum256([]byte(botToken))
	mac := hmac.New(sha256.New, secret[:])
	mac.Write([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(mac.Sum(nil))
}
