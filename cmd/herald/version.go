package main

import (
	"runtime/debug"
	"strings"
)

// commit may be set at build time (-ldflags "-X main.commit=…") where the
// Go toolchain does not stamp VCS information (GOFLAGS=-buildvcs=false, a
// source tarball, a container build without .git).
var commit = ""

// versionString reports what this binary is (see describeBuild).
func versionString() string {
	info, _ := debug.ReadBuildInfo()
	return describeBuild(version, commit, info)
}

// describeBuild names a build: the version set at build time
// (-X main.version=…) or else the module version from the build info
// ("v1.2.3" for "go install …@v1.2.3", "(devel)" for a local build); the
// commit (the VCS revision the toolchain stamped, "+dirty" when the
// checkout had uncommitted changes, or -X main.commit=…) and its time; and
// the Go version.
func describeBuild(version, commit string, info *debug.BuildInfo) string {
	v := version
	var rev, at, goVersion string
	dirty := false
	if info != nil {
		if v == "dev" && info.Main.Version != "" {
			v = info.Main.Version
		}
		goVersion = info.GoVersion
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
	}
	if rev == "" {
		rev = commit
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
	if goVersion != "" {
		parts = append(parts, goVersion)
	}
	return strings.Join(parts, " ")
}
