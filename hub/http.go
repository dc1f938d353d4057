package hub

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// maxBody bounds request bodies; a description is at most 10,000
// characters and metadata at most 64 KiB.
const maxBody = 1 << 20

// HTTPHandler serves the HTTP API. Reads are open; writes need an admin
// bearer token.
func (a *API) HTTPHandler(auth *broker.Authenticator) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, a.Health()) })
	mux.HandleFunc("GET /api/tasks", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		writeJSON(w, a.List(r.Context(), ListQuery{Status: q.Get("status"), Priority: q.Get("priority"), AssignedTo: q.Get("assigned_to")}))
	})
	mux.HandleFunc("GET /api/tasks/stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, a.Stats()) })
	mux.HandleFunc("GET /api/tasks/dead-letter", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, a.DeadLetter()) })
	mux.HandleFunc("GET /api/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, a.Get(r.Context(), r.PathValue("id")))
	})
	mux.HandleFunc("POST /api/tasks", a.adminOnly(auth, func(r *http.Request, who string, body []byte) Reply {
		return a.Submit(r.Context(), who, body)
	}))
	mux.HandleFunc("POST /api/tasks/{id}/retry", a.adminOnly(auth, func(r *http.Request, who string, _ []byte) Reply {
		return a.Retry(r.Context(), who, r.PathValue("id"))
	}))
	mux.HandleFunc("POST /api/tasks/{id}/cancel", a.adminOnly(auth, func(r *http.Request, who string, body []byte) Reply {
		return a.Cancel(r.Context(), who, r.PathValue("id"), body)
	}))
	mux.HandleFunc("GET /api/agents", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, a.Agents()) })
	mux.HandleFunc("GET /api/agents/states", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, a.Agents()) })
	mux.HandleFunc("GET /api/agents/{id}/state", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, a.Agent(r.PathValue("id")))
	})
	mux.HandleFunc("POST /admin/tokens", a.adminOnly(auth, func(r *http.Request, _ string, body []byte) Reply {
		return a.CreateToken(r.Context(), body)
	}))
	mux.HandleFunc("GET /admin/tokens", a.adminOnly(auth, func(r *http.Request, _ string, _ []byte) Reply {
		return a.ListTokens(r.Context())
	}))
	mux.HandleFunc("DELETE /admin/tokens/{agent_id}", a.adminOnly(auth, func(r *http.Request, _ string, _ []byte) Reply {
		return a.RevokeToken(r.Context(), r.PathValue("agent_id"))
	}))
	mux.HandleFunc("GET /api/admin/log-level", a.adminOnly(auth, func(*http.Request, string, []byte) Reply {
		return a.LogLevels()
	}))
	mux.HandleFunc("PUT /api/admin/log-level", a.adminOnly(auth, func(r *http.Request, who string, body []byte) Reply {
		return a.SetLogLevel(r.Context(), who, body)
	}))
	mux.HandleFunc("POST /api/admin/compact", a.adminOnly(auth, func(r *http.Request, _ string, _ []byte) Reply {
		return a.Compact(r.Context())
	}))
	mux.HandleFunc("POST /api/admin/backup", a.adminOnly(auth, func(r *http.Request, _ string, _ []byte) Reply {
		return a.Backup(r.Context())
	}))
	mux.HandleFunc("POST /api/admin/restore", a.adminOnly(auth, func(r *http.Request, _ string, body []byte) Reply {
		return a.Restore(r.Context(), body)
	}))
	mux.HandleFunc("GET /api/admin/store-health", a.adminOnly(auth, func(r *http.Request, _ string, _ []byte) Reply {
		return a.StoreHealth(r.Context())
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, Reply{http.StatusNotFound, ErrorBody{Error: protocol.CodeNotFound}})
	})
	return a.withRequest(mux)
}

type adminFunc func(r *http.Request, who string, body []byte) Reply

// admin checks the bearer token before reading the body, so a refused
// request does nothing at all.
func (a *API) adminOnly(auth *broker.Authenticator, fn adminFunc) http.HandlerFunc {
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
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, Reply{http.StatusRequestEntityTooLarge, ErrorBody{Error: "body_too_large", Detail: "the body must be at most 1 MiB"}})
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
