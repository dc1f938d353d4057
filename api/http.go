package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/dashboard"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
)

// maxBody bounds request bodies; a description is at most 10,000
// characters and metadata at most 64 KiB.
const maxBody = 1 << 20

// bodyLimit is op's bound on its HTTP body.
func bodyLimit(op ops.Op) int {
	if op.MaxBody > 0 {
		return op.MaxBody
	}
	return maxBody
}

// HTTPHandler serves the HTTP API: every operation of the table on its
// route, each behind the role check of its access (see permit). It fails
// if an operation has no handler.
func (a *API) HTTPHandler() (http.Handler, error) {
	bound, err := bind(a.table, a.handlers())
	if err != nil {
		return nil, err
	}
	return a.withRequest(a.httpMux(bound)), nil
}

// routeMux is a ServeMux that remembers every pattern registered on it,
// so that the parity test sees a route added outside the table.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

// HandleFunc registers and remembers pattern.
func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, h)
}

// Handle registers and remembers pattern.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// httpMux routes bound's operations, and answers 404 not_found on any
// other path.
func (a *API) httpMux(bound []boundOp) *routeMux {
	mux := &routeMux{ServeMux: http.NewServeMux()}
	for _, op := range bound {
		mux.HandleFunc(op.Pattern(), a.guarded(op))
	}
	mux.Handle(DashboardRoute, dashboard.Handler()) // public: the page holds no data
	mux.HandleFunc(StreamRoute, a.serveStream)
	mux.Handle(MCPRoute, a.mcpHandler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, Reply{http.StatusNotFound, ErrorBody{Error: protocol.CodeNotFound}})
	})
	return mux
}

// serveOp calls op with the path parameters of r and its body: the
// request's, or for an op with filters, the query string's.
func (a *API) serveOp(r *http.Request, op boundOp, c call) Reply {
	c.params = map[string]string{}
	for _, p := range op.Params() {
		c.params[p] = r.PathValue(p)
	}
	if op.Query != nil {
		b, err := queryBody(op.Query, r.URL.Query())
		if err != nil {
			return a.errorReply(r.Context(), err)
		}
		c.body = b
	}
	return op.handle(r.Context(), c)
}

// guarded checks the bearer token against op's access before reading the
// body, so a refused request does nothing at all.
func (a *API) guarded(op boundOp) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, refusal, ok := a.callerOf(op.Op, bearer(r))
		if ok {
			refusal, ok = a.throttle(op.Op, c)
		}
		if !ok {
			writeJSON(w, refusal)
			return
		}
		if op.Request != nil {
			body, refusal, ok := readBody(w, r, bodyLimit(op.Op))
			if !ok {
				writeJSON(w, refusal)
				return
			}
			c.body = body
		}
		writeJSON(w, a.serveOp(r, op, c))
	}
}

// callerOf authenticates an HTTP caller by its bearer token (none is an
// anonymous caller, a token not known is refused) and checks op's access.
func (a *API) callerOf(op ops.Op, token string) (call, Reply, bool) {
	if token == "" {
		r, ok := a.permit(op, call{})
		return call{}, r, ok
	}
	id, known := broker.Identity{}, false
	if a.auth != nil {
		id, known = a.auth.Lookup(token)
	}
	if !known {
		return call{}, Reply{http.StatusUnauthorized, ErrorBody{Error: "unauthorized", Needs: op.Needs(),
			Detail: "the token was not recognised", Hint: "provide Authorization: Bearer <token>"}}, false
	}
	c := call{who: id.Name, role: id.Role}
	r, ok := a.permit(op, c)
	return c, r, ok
}

func readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, Reply, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, Reply{http.StatusRequestEntityTooLarge, ErrorBody{Error: "body_too_large",
			Detail: fmt.Sprintf("the body must be at most %d bytes", limit)}}, false
	}
	if err != nil {
		return nil, Reply{http.StatusBadRequest, ErrorBody{Error: "bad_request", Detail: "could not read the body"}}, false
	}
	return body, Reply{}, true
}

// bearer returns the token of an "Authorization: Bearer <token>" header
// (the scheme in any case), or "".
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// withRequest gives every request an id (the caller's X-Request-Id when it
// is sane), returns it in the response, and logs the request (at debug;
// a refused admin request also counts towards a warning, see refusals).
func (a *API) withRequest(next http.Handler) http.Handler {
	log := a.log.Module("http")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := logsink.RequestIDOr(r.Header.Get("X-Request-Id"))
		w.Header().Set("X-Request-Id", id)
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		r = r.WithContext(withIdempotencyKey(logsink.WithRequestID(r.Context(), id), r.Header.Get(HeaderIdempotencyKey)))
		next.ServeHTTP(rec, r) // sets r.Pattern, the route it matched
		a.refused.record(rec.status, r.Pattern)
		log.Debug().Str("request_id", id).Str("method", r.Method).Str("path", r.URL.Path).
			Int("status", rec.status).Dur("duration_ms", time.Since(start)).Msg("http request")
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush sends what is buffered (the live stream's events).
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the writer beneath.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func writeJSON(w http.ResponseWriter, r Reply) {
	if t, ok := r.Body.(ops.Text); ok {
		w.Header().Set("Content-Type", t.ContentType)
		w.WriteHeader(r.Status)
		_, _ = io.WriteString(w, t.Body)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if s := retryAfter(r); s != "" {
		w.Header().Set("Retry-After", s)
	}
	w.WriteHeader(r.Status)
	_ = json.NewEncoder(w).Encode(r.Body)
}

// Served lists what the transports serve, built as HTTPHandler and
// ServeNATS build them: the HTTP mux's patterns (the catch-all "/"
// among them) and the NATS command names, each sorted.
func (a *API) Served() (patterns, commands []string, err error) {
	bound, err := bind(a.table, a.handlers())
	if err != nil {
		return nil, nil, err
	}
	patterns = slices.Sorted(slices.Values(a.httpMux(bound).patterns))
	for _, op := range bound {
		commands = append(commands, op.Name)
	}
	slices.Sort(commands)
	return patterns, commands, nil
}
