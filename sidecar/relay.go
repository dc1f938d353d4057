package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// The environment a task's command (exec) or a woken agent (wake) finds
// the relay and the inbox by.
const (
	// SocketVar names the relay's unix socket: agentcom send, inbox,
	// reserve and release talk to the hub through it, as the agent.
	SocketVar = "AGENTCOM_SIDECAR_SOCKET"
	// InboxVar names the inbox directory.
	InboxVar = "AGENTCOM_INBOX_DIR"
	// MCPVar is the command line that starts the agent's MCP server
	// (agentcom mcp) for the task's agent program to launch over stdio.
	MCPVar = "AGENTCOM_MCP_COMMAND"
)

// RelayVerbs are the verbs the relay takes from a task's command: agent
// verbs it passes to the hub, and the task's own (task, progress,
// complete, fail), which it sends with the generation it holds.
var RelayVerbs = []string{broker.VerbSend, broker.VerbInbox, broker.VerbAck, broker.VerbJoin, broker.VerbLeave,
	broker.VerbHistory, broker.VerbReserve, broker.VerbRenew, broker.VerbRelease, broker.VerbBlocked,
	broker.VerbUnblocked, RelayTask, broker.VerbProgress, broker.VerbComplete, broker.VerbFail}

// Relay bounds.
const (
	relayMaxBody   = 4*protocol.MaxMessageBody + 4096 // a text body's JSON escapes can grow it
	relaySocket    = "sidecar.sock"
	maxSocketPath  = 100 // sun_path holds 108 bytes on Linux, 104 on macOS
	relayStopGrace = 2 * time.Second
)

// relay serves the task's commands on a unix socket only the sidecar's
// user can open (mode 0600, in a 0700 directory). The agent's token never
// leaves the sidecar: the commands ask, the sidecar sends as itself.
type relay struct {
	path   string
	tmpDir string // made when the state dir's path is too long for a socket
	srv    *http.Server
}

// startRelay listens on the relay socket and serves it in the background.
func (s *Sidecar) startRelay() error {
	r := &relay{path: filepath.Join(s.cfg.StateDir, relaySocket)}
	if len(r.path) > maxSocketPath {
		dir, err := os.MkdirTemp("", "agentcom-sidecar-")
		if err != nil {
			return fmt.Errorf("make relay socket dir: %w", err)
		}
		r.tmpDir, r.path = dir, filepath.Join(dir, relaySocket)
	}
	_ = os.Remove(r.path) // a crashed run's; the state lock says none runs now
	ln, err := net.Listen("unix", r.path)
	if err != nil {
		return fmt.Errorf("listen on relay socket %s: %w", r.path, err)
	}
	if err := os.Chmod(r.path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("protect relay socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/{verb}", s.serveRelay)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.relay = r
	go func() { _ = r.srv.Serve(ln) }()
	return nil
}

// stopRelay closes the socket, letting requests in flight finish briefly.
func (s *Sidecar) stopRelay() {
	r := s.relay
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), relayStopGrace)
	defer cancel()
	if r.srv.Shutdown(ctx) != nil {
		r.srv.Close()
	}
	_ = os.Remove(r.path)
	if r.tmpDir != "" {
		_ = os.RemoveAll(r.tmpDir)
	}
}

// RelaySocket is the relay's socket path ("" before Start).
func (s *Sidecar) RelaySocket() string {
	if s.relay == nil {
		return ""
	}
	return s.relay.path
}

// relayEnv is what a task's command is told about the relay and inbox.
func (s *Sidecar) relayEnv() []string {
	env := []string{SocketVar + "=" + s.RelaySocket(), InboxVar + "=" + s.inbox.dir}
	if exe, err := os.Executable(); err == nil {
		env = append(env, MCPVar+"="+exe+" mcp") // the agent's MCP server: it finds the socket above
	}
	return env
}

// serveRelay answers one request of a task's command: inbox from the
// inbox directory, the other verbs by asking the hub as the agent, whose
// answer (status and body) it passes on.
func (s *Sidecar) serveRelay(w http.ResponseWriter, r *http.Request) {
	verb, rid := r.PathValue("verb"), logsink.RequestIDOr(r.Header.Get(protocol.HeaderRequestID))
	w.Header().Set(protocol.HeaderRequestID, rid)
	if !slices.Contains(RelayVerbs, verb) {
		writeRelay(w, http.StatusNotFound, protocol.Error{Error: protocol.CodeNotFound,
			Detail: fmt.Sprintf("the sidecar relays %s, not %q", strings.Join(RelayVerbs, ", "), verb)})
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, relayMaxBody))
	if err != nil {
		writeRelay(w, http.StatusRequestEntityTooLarge, protocol.Error{Error: "too_large", Detail: err.Error()})
		return
	}
	switch verb {
	case RelayTask, broker.VerbProgress, broker.VerbComplete, broker.VerbFail:
		s.serveTaskVerb(w, r.Header.Get(protocol.HeaderMCPTool), verb, bytes.TrimSpace(data))
		return
	}
	if verb == broker.VerbInbox {
		in, err := s.inbox.list()
		if err != nil {
			s.log.Error().Err(err).Msg("inbox file unreadable")
		}
		writeRelay(w, http.StatusOK, in)
		return
	}
	ctx := WithTool(r.Context(), r.Header.Get(protocol.HeaderMCPTool))
	status, body, err := s.exchange(ctx, verb, rid, bytes.TrimSpace(data))
	if err != nil {
		writeRelay(w, http.StatusServiceUnavailable, protocol.Error{Error: "hub_unreachable", Detail: err.Error()})
		return
	}
	if verb == broker.VerbAck && status == http.StatusOK {
		s.afterAck(body)
	}
	s.log.Info().Str("verb", verb).Int("status", status).Str("request_id", rid).Msg("relayed a task command's request")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

type toolKey struct{}

// WithTool marks the requests made with ctx as made for an MCP tool: the
// relay passes the name on, and the hub times the request as an mcp.tool
// span.
func WithTool(ctx context.Context, tool string) context.Context {
	if tool == "" {
		return ctx
	}
	return context.WithValue(ctx, toolKey{}, tool)
}

func toolOf(ctx context.Context) string {
	t, _ := ctx.Value(toolKey{}).(string)
	return t
}

// afterAck removes what the hub's cursor now covers from the inbox.
func (s *Sidecar) afterAck(body []byte) {
	var a protocol.Ack
	if json.Unmarshal(body, &a) != nil {
		return
	}
	n, err := s.inbox.acknowledged(a.Seq)
	if err != nil {
		s.log.Error().Err(err).Msg("acknowledged messages not removed from the inbox")
	}
	s.log.Info().Uint64("cursor", a.Seq).Int("removed", n).Msg("messages acknowledged")
}

func writeRelay(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// RelayCall asks the sidecar listening on socket for verb with req, and
// decodes a 2xx answer into out (nil: ignore it). A non-2xx answer is a
// *HubError with the hub's (or the relay's) error word. The answer's raw
// body is returned too, for --json.
func RelayCall(ctx context.Context, socket, verb, requestID string, req, out any) (json.RawMessage, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", verb, err)
	}
	hc := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://sidecar/v1/"+verb, bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("make %s request: %w", verb, err)
	}
	hreq.Header.Set(protocol.HeaderRequestID, requestID)
	if tool := toolOf(ctx); tool != "" {
		hreq.Header.Set(protocol.HeaderMCPTool, tool)
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("reach the sidecar at %s (%s): %w", socket, SocketVar, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s answer: %w", verb, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e protocol.Error
		_ = json.Unmarshal(body, &e)
		return body, &HubError{Verb: verb, Status: resp.StatusCode, Code: e.Error, Detail: e.Detail}
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return body, fmt.Errorf("decode %s answer: %w", verb, err)
		}
	}
	return bytes.TrimSpace(body), nil
}
