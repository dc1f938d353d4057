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
// route. Reads are open; writes and admin routes need an admin bearer
// token. It fails if an operation has no handler.
func (a *API) HTTPHandler(auth *broker.Authenticator) (http.Handler, error) {
	bound, err := bind(a.table, a.handlers())
	if err != nil {
		return nil, err
	}
	return a.withRequest(a.httpMux(auth, bound)), nil
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
func (a *API) httpMux(auth *broker.Authenticator, bound []boundOp) *routeMux {
	mux := &routeMux{ServeMux: http.NewServeMux()}
	for _, op := range bound {
		if op.Access == ops.Admin {
			mux.HandleFunc(op.Pattern(), a.adminOnly(auth, bodyLimit(op.Op), func(r *http.Request, who string, body []byte) Reply {
				return a.serveOp(r, op, who, body)
			}))
			continue
		}
		mux.HandleFunc(op.Pattern(), func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, a.serveOp(r, op, "", nil))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, Reply{http.StatusNotFound, ErrorBody{Error: protocol.CodeNotFound}})
	})
	return mux
}

// serveOp calls op with the path parameters of r and its body: the
// request's, or for an op with filters, the query string's.
func (a *API) serveOp(r *http.Request, op boundOp, who string, body []byte) Reply {
	c := call{who: who, params: map[string]string{}, body: body}
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

type adminFunc func(r *http.Request, who string, body []byte) Reply

// admin checks the bearer token before reading the body, so a refused
// request does nothing at all.
func (a *API) adminOnly(auth *broker.Authenticator, limit int, fn adminFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := auth.Lookup(bearer(r))
		if !ok {
			writeJSON(w, Reply{http.StatusUnauthorized, ErrorBody{Error: "unauthorized", Hint: "provide Authorization: Bearer <token>"}})
			return
		}
		if id.Role != broker.RoleAdmin && id.Role != broker.RoleHub {
			writeJSON(w, Reply{http.StatusForbidden, ErrorBody{Error: "admin_only"}})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, Reply{http.StatusRequestEntityTooLarge, ErrorBody{Error: "body_too_large",
				Detail: fmt.Sprintf("the body must be at most %d bytes", limit)}})
			return
		}
		if err != nil {
			writeJSON(w, Reply{http.StatusBadRequest, ErrorBody{Error: "bad_request", Detail: "could not read the body"}})
			return
		}
		writeJSON(w, fn(r, id.Name, body))
	}
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
		r = r.WithContext(logsink.WithRequestID(r.Context(), id))
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

func writeJSON(w http.ResponseWriter, r Reply) {
	w.Header().Set("Content-Type", "application/json")
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
	patterns = slices.Sorted(slices.Values(a.httpMux(nil, bound).patterns))
	for _, op := range bound {
		commands = append(commands, op.Name)
	}
	slices.Sort(commands)
	return patterns, commands, nil
}
