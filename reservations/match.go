package reservations

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/protocol"
)

// Bounds of a reserve.
const (
	MaxPaths      = 100
	MaxPathLength = 1024
	DefaultTTLS   = 600   // 10 minutes
	MaxTTLS       = 86400 // a day
)

// projectName is a project: one KV key, so letters, digits, '_', '-' and
// single dots between them.
var projectName = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// check validates a reserve and fills its defaults.
func check(r *protocol.Reserve) error {
	v := &domain.ValidationError{}
	checkProject(v, r.Project)
	if len(r.Paths) == 0 || len(r.Paths) > MaxPaths {
		v.Add("paths", "out_of_range", fmt.Sprintf("give 1 to %d paths or globs", MaxPaths))
	}
	for i, p := range r.Paths {
		if p == "" || len(p) > MaxPathLength || strings.ContainsRune(p, 0) {
			v.Add(fmt.Sprintf("paths[%d]", i), "invalid", fmt.Sprintf("a path of 1 to %d bytes, without NUL", MaxPathLength))
		} else if _, err := path.Match(p, ""); err != nil {
			v.Add(fmt.Sprintf("paths[%d]", i), "invalid", "not a glob path.Match takes: "+err.Error())
		}
	}
	r.TTLS = checkTTL(v, r.TTLS)
	if len(r.Reason) > 1024 {
		v.Add("reason", "too_long", "at most 1024 bytes")
	}
	return v.Err()
}

func checkProject(v *domain.ValidationError, project string) {
	if len(project) > 128 || !projectName.MatchString(project) {
		v.Add("project", "invalid", "1 to 128 letters, digits, '_', '-', and single dots between them")
	}
}

func checkTTL(v *domain.ValidationError, ttl int) int {
	if ttl == 0 {
		return DefaultTTLS
	}
	if ttl < 1 || ttl > MaxTTLS {
		v.Add("ttl_s", "out_of_range", fmt.Sprintf("1 to %d seconds (0: %d)", MaxTTLS, DefaultTTLS))
	}
	return ttl
}

// conflicts are the reservations of others that stand in r's way.
func conflicts(held []protocol.Reservation, agent string, r protocol.Reserve) []protocol.Reservation {
	var out []protocol.Reservation
	for _, h := range held {
		if h.AgentID != agent && (h.Exclusive || r.Exclusive) && anyOverlap(h.Paths, r.Paths) {
			out = append(out, h)
		}
	}
	return out
}

func anyOverlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if overlap(x, y) {
				return true
			}
		}
	}
	return false
}

// overlap tells whether two paths or globs may name one file. Two globs
// overlap when one's literal start is the other's (a safe guess: it may
// see an overlap where there is none, never miss one).
func overlap(a, b string) bool {
	ga, gb := isGlob(a), isGlob(b)
	switch {
	case !ga && !gb:
		return path.Clean(a) == path.Clean(b)
	case ga && !gb:
		return matches(a, b)
	case !ga && gb:
		return matches(b, a)
	}
	pa, pb := literalStart(a), literalStart(b)
	return strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa)
}

// matches is path.Match, with a trailing "/**" covering everything below.
func matches(glob, p string) bool {
	if dir, ok := strings.CutSuffix(glob, "/**"); ok {
		if m, _ := path.Match(dir, p); m {
			return true
		}
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			if m, _ := path.Match(dir, d); m {
				return true
			}
		}
		return false
	}
	m, _ := path.Match(glob, path.Clean(p))
	return m
}

func isGlob(p string) bool { return strings.ContainsAny(p, `*?[\`) }

func literalStart(p string) string { return p[:strings.IndexAny(p, `*?[\`)] }
