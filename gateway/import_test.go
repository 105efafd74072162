package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/store/storetest"
)

// csvRows streams a CSV import of n rows (chat ids from first) without
// holding it in memory, so the client does not distort memory figures.
func csvRows(first, n int) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 64<<10)
		w.WriteString("chat_id,timezone,language,purpose,legal_basis,source\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "%d,Europe/Berlin,de,support,contract,crm export 2026-03 batch %d\n", first+i, i/1000)
		}
		pw.CloseWithError(w.Flush())
	}()
	return pr
}

// importCSV posts a streamed CSV import and decodes the answer's counts.
func importCSV(t testing.TB, url, key string, body io.Reader) (status int, rows, created int, raw string) {
	t.Helper()
	req, err := http.NewRequest("POST", url+"/v1/contacts:import", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, 0, 0, ""
	}
	defer res.Body.Close()
	var out struct {
		Rows, Created int
		Contacts      []json.RawMessage
		Code          string
	}
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &out)
	if res.StatusCode == 200 && len(out.Contacts) != out.Rows {
		t.Errorf("import answered %d ids for %d rows", len(out.Contacts), out.Rows)
	}
	if len(b) > 300 {
		b = b[:300]
	}
	return res.StatusCode, out.Rows, out.Created, string(b)
}

// liveHeap samples the live heap (as of the last GC) until stop, and
// returns the largest value seen.
func liveHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var peak uint64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// TestConcurrentImportsUseBoundedMemory: four 40,000-row CSV imports of two
// organisations at once (the per-organisation cap is two) all succeed, and
// the live heap grows by far less than the rows would take in memory.
func TestConcurrentImportsUseBoundedMemory(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	other, err := e.s.CreateOrg(context.Background(), "Other", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{e.keys[herald.RoleComplianceOfficer], e.newKey(other.ID, "co-2", herald.RoleComplianceOfficer)}
	const n = 40_000
	runtime.GC()
	base := liveHeapNow()
	stop := make(chan struct{})
	peak := liveHeap(stop)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			status, rows, created, raw := importCSV(t, e.srv.URL, keys[i%2], csvRows(100_000_000+i*n, n))
			if status != 200 || rows != n || created != n {
				t.Errorf("import %d = %d rows %d created %d: %s", i, status, rows, created, raw)
			}
		}(i)
	}
	wg.Wait()
	close(stop)
	grew := int64(<-peak) - int64(base)
	// Held in memory, 160,000 rows with their ids and answers take well
	// over 60 MB of live heap; streamed, each import holds one batch.
	t.Logf("live heap grew by at most %.1f MB during 4 × %d-row imports", float64(grew)/(1<<20), n)
	if grew > 24<<20 {
		t.Fatalf("live heap grew by %.1f MB; imports are not bounded", float64(grew)/(1<<20))
	}
	if c := e.counts(); c.contacts != 4*n {
		t.Fatalf("%d contacts after the imports; want %d", c.contacts, 4*n)
	}
}

func liveHeapNow() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestImportConcurrencyCapPerOrganisation: while two imports of an
// organisation are running, a third answers 429 with Retry-After and
// changes nothing; another organisation imports meanwhile.
func TestImportConcurrencyCapPerOrganisation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		other, err := e.s.CreateOrg(context.Background(), "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		co, co2 := e.keys[herald.RoleComplianceOfficer], e.newKey(other.ID, "co-2", herald.RoleComplianceOfficer)
		// Two uploads that stall mid-body until released. They send 200
		// rows first: the HTTP client buffers a request until it has a few
		// kilobytes, and the handler must be reading the body.
		release := make(chan struct{})
		var releaseOnce sync.Once
		t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			pr, pw := io.Pipe()
			go func(i int) {
				fmt.Fprint(pw, "chat_id,purpose,legal_basis,source\n")
				for j := 0; j < 200; j++ {
					fmt.Fprintf(pw, "%d,support,contract,crm stalled upload\n", 80000+1000*i+j)
				}
				<-release
				fmt.Fprintf(pw, "%d,support,contract,crm\n", 7000+i)
				pw.Close()
			}(i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if status, rows, _, raw := importCSV(t, e.srv.URL, co, pr); status != 200 || rows != 201 {
					t.Errorf("stalled import = %d %s", status, raw)
				}
			}()
		}
		for deadline := time.Now().Add(20 * time.Second); gateway.ImportsRunning(e.org.ID) < 2; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the stalled imports did not start: %d running", gateway.ImportsRunning(e.org.ID))
			}
		}
		before := e.counts()
		r := e.do("POST", "/v1/contacts:import", co, []byte("chat_id,purpose,legal_basis,source\n1,support,contract,crm\n"), "Content-Type", "text/csv")
		checkProblem(t, r, http.StatusTooManyRequests, "rate_limited", "")
		if s, _ := strconv.Atoi(r.header.Get("Retry-After")); s < 1 {
			t.Fatalf("Retry-After = %q", r.header.Get("Retry-After"))
		}
		if after := e.counts(); after != before {
			t.Fatalf("a refused import changed %+v → %+v", before, after)
		}
		if status, rows, _, raw := importCSV(t, e.srv.URL, co2, strings.NewReader("chat_id,purpose,legal_basis,source\n1,support,contract,crm\n")); status != 200 || rows != 1 {
			t.Fatalf("another organisation's import = %d %s", status, raw)
		}
		releaseOnce.Do(func() { close(release) })
		wg.Wait()
		if status, _, _, raw := importCSV(t, e.srv.URL, co, strings.NewReader("chat_id,purpose,legal_basis,source\n2,support,contract,crm\n")); status != 200 {
			t.Fatalf("import after the others finished = %d %s", status, raw)
		}
	})
}

// BenchmarkContactImportMillionRows imports 1,000,000 CSV rows (about 60 MB)
// over HTTP into SQLite and reports the process's peak RSS during the
// import (VmHWM, reset before it) and rows per second.
//
//	go test ./gateway -run '^$' -bench ContactImportMillionRows -benchtime 1x
func BenchmarkContactImportMillionRows(b *testing.B) {
	const n = 1_000_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newEnv(b, storetest.SQLite)
		runtime.GC()
		resetPeakRSS(b)
		b.StartTimer()
		start := time.Now()
		status, rows, _, raw := importCSV(b, e.srv.URL, e.keys[herald.RoleComplianceOfficer], csvRows(100_000_000, n))
		if status != 200 || rows != n {
			b.Fatalf("import = %d %s", status, raw)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "rows/s")
		b.ReportMetric(float64(peakRSS(b))/(1<<20), "peak-RSS-MB")
	}
}

// resetPeakRSS resets the kernel's high-water mark of this process's RSS.
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset peak RSS (Linux /proc): %v", err)
	}
}

func peakRSS(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}
