package gateway

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestTextReaderSplitRunes: valid text read one byte at a time (every
// multi-byte rune split across reads) passes unchanged; invalid text fails
// however it is split, including a rune cut off at the end of the body.
func TestTextReaderSplitRunes(t *testing.T) {
	valid := "héllo wörld – 日本語 🎉 \"quoted\""
	for name, r := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(strings.NewReader(valid)),
		"half":     iotest.HalfReader(strings.NewReader(valid)),
		"whole":    strings.NewReader(valid),
	} {
		got, err := io.ReadAll(&textReader{r: r})
		if err != nil || string(got) != valid {
			t.Fatalf("%s: = %q, %v; want the text unchanged", name, got, err)
		}
	}
	for _, bad := range []string{"a\xffb", "ab\xe2\x82", "\xc3\x28", "\xed\xa0\x80", "ok\xf0\x9f\x8e"} {
		for name, r := range map[string]io.Reader{
			"one byte": iotest.OneByteReader(strings.NewReader(bad)),
			"whole":    strings.NewReader(bad),
		} {
			if _, err := io.ReadAll(&textReader{r: r}); !errors.Is(err, errInvalidUTF8) {
				t.Fatalf("%q read %s: err = %v; want invalid UTF-8", bad, name, err)
			}
		}
	}
}

// BenchmarkTextReader is the UTF-8 check every JSON and CSV body passes
// through (bytes/s of a 64 KiB mixed-script body).
func BenchmarkTextReader(b *testing.B) {
	body := []byte(strings.Repeat("héllo wörld – 日本語 🎉 plain ascii text, ", 1500))
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := io.Copy(io.Discard, &textReader{r: bytesReader(body)}); err != nil {
			b.Fatal(err)
		}
	}
}

func bytesReader(b []byte) io.Reader { return strings.NewReader(string(b)) }
