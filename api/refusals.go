package api

import (
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/agentcom/agentcom/logsink"
)

// refusalInterval is how often refused requests are summarised.
const refusalInterval = time.Minute

// refusedStatuses are the answers that refuse an admin request: no or a
// bad token, a token without the admin role, a body too large, a body
// that does not validate.
var refusedStatuses = map[int]bool{
	http.StatusUnauthorized: true, http.StatusForbidden: true,
	http.StatusRequestEntityTooLarge: true, http.StatusUnprocessableEntity: true,
}

// refusalKey is one row of the summary: a status on a route.
type refusalKey struct {
	status int
	route  string // the mux pattern, such as "PUT /api/admin/log-level"
}

// refusals logs refused requests at warning without letting a flood
// flood the log: the first refusal after a quiet interval is logged at
// once, the ones that follow are counted and logged as one summary line
// per interval (counts by status and route), and what is left is logged
// at Stop. Routes are mux patterns, so the rows are few whatever the
// paths requested.
type refusals struct {
	log      logsink.Logger
	interval time.Duration
	now      func() time.Time
	after    func(time.Duration, func()) // time.AfterFunc; tests step it by hand

	mu      sync.Mutex
	open    bool // a window is open: refusals are counted, not logged
	since   time.Time
	counts  map[refusalKey]int
	stopped bool
}

func newRefusals(log logsink.Logger) *refusals {
	return &refusals{log: log, interval: refusalInterval, now: time.Now,
		after:  func(d time.Duration, f func()) { time.AfterFunc(d, f) },
		counts: map[refusalKey]int{}}
}

// adminRoute reports whether a mux pattern is an admin route.
func adminRoute(pattern string) bool {
	_, path, _ := strings.Cut(pattern, " ")
	return strings.HasPrefix(path, "/api/admin/") || strings.HasPrefix(path, "/admin/")
}

// record takes one answered request, and counts it if it was refused:
// any route's 401 or 403 (a missing token, or a role short of the op's),
// an admin route's other refusals. NATS commands come as "NATS <name>".
func (r *refusals) record(status int, pattern string) {
	roleRefusal := status == http.StatusUnauthorized || status == http.StatusForbidden
	if !roleRefusal && (!refusedStatuses[status] || !adminRoute(pattern)) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[refusalKey{status, pattern}]++
	if r.open || r.stopped {
		return
	}
	r.open = true
	r.since = r.now()
	r.flushLocked() // the first of a quiet interval: at once
	r.after(r.interval, r.tick)
}

// tick ends a window: it logs what was counted in it and keeps the next
// window open, or, if nothing was, closes it.
func (r *refusals) tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || len(r.counts) == 0 {
		r.open = false
		return
	}
	r.flushLocked()
	r.after(r.interval, r.tick)
}

// stop logs what is counted and stops summarising.
func (r *refusals) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushLocked()
	r.stopped = true
}

// flushLocked logs the counts as one warning and starts a new window.
func (r *refusals) flushLocked() {
	now := r.now()
	if len(r.counts) > 0 {
		keys := make([]refusalKey, 0, len(r.counts))
		total := 0
		for k, n := range r.counts {
			keys = append(keys, k)
			total += n
		}
		sort.Slice(keys, func(i, j int) bool {
			return keys[i].route < keys[j].route || (keys[i].route == keys[j].route && keys[i].status < keys[j].status)
		})
		rows := zerolog.Arr()
		for _, k := range keys {
			rows.Dict(zerolog.Dict().Int("status", k.status).Str("route", k.route).Int("count", r.counts[k]))
		}
		r.log.Warning().Int("total", total).Array("refused", rows).Time("since", r.since.UTC()).
			Dur("window_ms", now.Sub(r.since)).Msg("requests refused")
	}
	r.counts = map[refusalKey]int{}
	r.since = now
}
