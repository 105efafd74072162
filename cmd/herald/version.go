package main

import (
	"runtime/debug"
	"strings"
)

// versionString reports what this binary is: the version set at build time
// (-ldflags "-X main.version=…") or, failing that, the module version from
// the build info ("v1.2.3" for "go install …@v1.2.3", "(devel)" for a local
// build), and the VCS commit and its time when the binary was built from a
// checkout ("+dirty" when it had uncommitted changes).
func versionString() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if v == "dev" && info.Main.Version != "" {
		v = info.Main.Version
	}
	var rev, at string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	parts := []string{v}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "+dirty"
		}
		parts = append(parts, "commit "+rev)
	}
	if at != "" {
		parts = append(parts, at)
	}
	parts = append(parts, info.GoVersion)
	return strings.Join(parts, " ")
}
