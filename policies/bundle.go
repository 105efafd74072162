package policies

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Bundle is a policy bundle as uploaded or shipped: Rego modules, their
// *_test.rego tests and data.json documents, keyed by slash-separated path
// ("consent.rego", "consent_test.rego", "data.json", "org/data.json").
// A data.json at "a/b/data.json" is mounted at data.a.b, as in OPA bundles.
type Bundle struct {
	Files map[string][]byte
}

// Size limits for uploaded bundles. A compliance bundle is a few dozen
// kilobytes; the limits stop a hostile tar.gz from exhausting memory.
const (
	maxBundleFiles = 1000
	maxBundleBytes = 16 << 20
)

//go:embed bundle/*.rego bundle/data.json
var defaultBundleFS embed.FS

// DefaultBundle returns the bundle Herald ships: consent, quiet hours,
// frequency caps, risk and approval, with their tests and default params.
func DefaultBundle() Bundle {
	b, err := loadFS(defaultBundleFS, "bundle")
	if err != nil {
		// The bundle is embedded at build time; failing to read it is a
		// broken build, not a runtime condition.
		panic(fmt.Sprintf("policies: embedded default bundle: %v", err))
	}
	return b
}

// LoadBundleDir reads the .rego and data.json files under dir.
func LoadBundleDir(dir string) (Bundle, error) {
	b, err := loadFS(os.DirFS(dir), ".")
	if err != nil {
		return Bundle{}, fmt.Errorf("load bundle dir %s: %w", dir, err)
	}
	return b, nil
}

func loadFS(fsys fs.FS, root string) (Bundle, error) {
	b := Bundle{Files: map[string][]byte{}}
	var total int
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if strings.HasPrefix(name, ".") && p != root {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isBundleFile(p) {
			return nil
		}
		content, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		if root == "." {
			rel = p
		}
		total += len(content)
		if len(b.Files) >= maxBundleFiles || total > maxBundleBytes {
			return fmt.Errorf("bundle exceeds %d files or %d bytes", maxBundleFiles, maxBundleBytes)
		}
		b.Files[rel] = content
		return nil
	})
	if err != nil {
		return Bundle{}, err
	}
	if len(b.Files) == 0 {
		return Bundle{}, errors.New("no .rego or data.json files")
	}
	return b, nil
}

// ReadBundleTarGz reads a gzip-compressed tar of .rego and data.json files,
// the form `opa build` produces and compliance officers upload. Other files
// (such as .manifest) are ignored.
func ReadBundleTarGz(r io.Reader) (Bundle, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return Bundle{}, fmt.Errorf("read bundle tar.gz: %w", err)
	}
	defer zr.Close()
	tr := tar.NewReader(io.LimitReader(zr, maxBundleBytes*2))
	b := Bundle{Files: map[string][]byte{}}
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Bundle{}, fmt.Errorf("read bundle tar.gz: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		p, err := cleanBundlePath(h.Name)
		if err != nil {
			return Bundle{}, fmt.Errorf("read bundle tar.gz: %w", err)
		}
		if !isBundleFile(p) {
			continue
		}
		total += h.Size
		if len(b.Files) >= maxBundleFiles || total > maxBundleBytes {
			return Bundle{}, fmt.Errorf("read bundle tar.gz: bundle exceeds %d files or %d bytes", maxBundleFiles, maxBundleBytes)
		}
		content, err := io.ReadAll(io.LimitReader(tr, maxBundleBytes))
		if err != nil {
			return Bundle{}, fmt.Errorf("read bundle tar.gz: %s: %w", p, err)
		}
		b.Files[p] = content
	}
	if len(b.Files) == 0 {
		return Bundle{}, errors.New("read bundle tar.gz: no .rego or data.json files")
	}
	return b, nil
}

// cleanBundlePath normalises an archive path and refuses ones that escape
// the bundle root.
func cleanBundlePath(name string) (string, error) {
	slashed := filepath.ToSlash(name)
	if slices.Contains(strings.Split(slashed, "/"), "..") {
		return "", fmt.Errorf("invalid path %q", name)
	}
	p := path.Clean("/" + slashed)[1:]
	if p == "" {
		return "", fmt.Errorf("invalid path %q", name)
	}
	return p, nil
}

func isBundleFile(p string) bool {
	return strings.HasSuffix(p, ".rego") || path.Base(p) == "data.json"
}

func isTestFile(p string) bool {
	return strings.HasSuffix(p, "_test.rego")
}

// Hash is the hex SHA-256 of the bundle: every path and content in sorted
// path order, each length-prefixed so no two bundles share a preimage. The
// ledger records it with every decision and activation.
func (b Bundle) Hash() string {
	h := sha256.New()
	var n [8]byte
	for _, p := range slices.Sorted(maps.Keys(b.Files)) {
		for _, part := range [][]byte{[]byte(p), b.Files[p]} {
			binary.BigEndian.PutUint64(n[:], uint64(len(part)))
			h.Write(n[:])
			h.Write(part)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
