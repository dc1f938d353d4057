// Package dashboard holds the operators' page served at /dashboard: one
// HTML file with its script and style inline, embedded in the binary, so
// it works offline and needs no build step. It reads the hub's own API
// (the same JSON as the CLI) and listens to /api/events/stream for live
// updates (docs/dashboard.md).
package dashboard

import (
	_ "embed"
	"net/http"
)

//go:embed index.html
var page []byte

// Handler serves the page. It holds no data: what it shows, it reads with
// the token the operator gives it.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:")
		_, _ = w.Write(page)
	})
}
