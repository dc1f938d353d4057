package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/telemetry"
)

// The routes outside the operation table: the dashboard's page and its
// live stream, which are not request and answer (docs/dashboard.md).
const (
	DashboardRoute = "GET /dashboard"
	StreamRoute    = "GET /api/events/stream"
)

// ExtraRoutes are the HTTP routes served beside the table's.
var ExtraRoutes = []string{DashboardRoute, StreamRoute, MCPRoute}

// streamOp is the stream's access: a read.
var streamOp = ops.Op{Name: "events.stream", Method: "GET", Path: "/api/events/stream", Access: ops.Read}

// streamBuffer bounds the events waiting for a slow browser; past it they
// are dropped (the page reads the state again on the next one it gets).
const streamBuffer = 256

// keepalive is how often an idle stream sends a comment, so proxies and
// the browser keep it open.
const keepalive = 15 * time.Second

// serveStream sends every telemetry event as a server-sent event until the
// browser goes or the hub stops. EventSource cannot send headers, so the
// token may come as ?access_token= too.
func (a *API) serveStream(w http.ResponseWriter, r *http.Request) {
	token := bearer(r)
	if token == "" {
		token = r.URL.Query().Get("access_token")
	}
	if _, refusal, ok := a.callerOf(streamOp, token); !ok {
		writeJSON(w, refusal)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	fmt.Fprint(w, "retry: 1000\n\n") // reconnect a second after the hub goes
	flusher.Flush()
	events := a.subscribe()
	defer a.unsubscribe(events)
	a.pump(w, flusher, r, events.ch)
}

// pump writes events and keepalives until the request or the hub ends.
func (a *API) pump(w http.ResponseWriter, f http.Flusher, r *http.Request, ch <-chan telemetry.Event) {
	tick := time.NewTicker(keepalive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-a.streamsDone:
			return
		case ev := <-ch:
			b, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			fmt.Fprintf(w, "event: telemetry\ndata: %s\n\n", b)
		case <-tick.C:
			fmt.Fprint(w, ": keepalive\n\n")
		}
		f.Flush()
	}
}

// subscription is one stream's feed from the emitter.
type subscription struct {
	id string
	ch chan telemetry.Event
}

func (a *API) subscribe() subscription {
	s := subscription{id: "stream-" + broker.NewToken()[:16], ch: make(chan telemetry.Event, streamBuffer)}
	if a.tel != nil {
		a.tel.Attach(s.id, "", func(ev telemetry.Event) {
			select {
			case s.ch <- ev:
			default: // a slow browser loses events, never the hub
			}
		})
	}
	return s
}

func (a *API) unsubscribe(s subscription) {
	if a.tel != nil {
		a.tel.Detach(s.id)
	}
}

// StopStreams ends every live stream, so that the HTTP server's shutdown
// does not wait for them. Safe to call twice.
func (a *API) StopStreams() { a.stopStreams.Do(func() { close(a.streamsDone) }) }
