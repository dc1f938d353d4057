package broker

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Role is what a token may do.
type Role string

// The roles. The hub's own connection uses RoleHub; operators and the CLI
// use RoleAdmin; RoleViewer reads and changes nothing (dashboards,
// scripts); RoleAgent is one agent's, and reads only what concerns it.
const (
	RoleHub    Role = "hub"
	RoleAdmin  Role = "admin"
	RoleAgent  Role = "agent"
	RoleViewer Role = "viewer"
)

// Roles a token can be created with.
var TokenRoles = []Role{RoleAgent, RoleViewer, RoleAdmin}

// Identity is who a connection or an HTTP request authenticated as.
type Identity struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	// TokenID names the token on subjects (TokenID of the token).
	TokenID string `json:"-"`
}

// TokenIDLen is the length of a token id: hex digits of the token's hash.
const TokenIDLen = 16

// TokenID is a token's public name on subjects: the first TokenIDLen hex
// digits of its SHA-256. Knowing it grants nothing: only a connection
// made with the token may publish under it.
func TokenID(token string) string { return HashToken(token)[:TokenIDLen] }

// Authenticator checks tokens presented by NATS clients and HTTP callers.
// It knows tokens only by their SHA-256 hash; the hub's own in-process
// connection uses a random secret that lives only in memory.
type Authenticator struct {
	ready      chan struct{} // closed once the stored tokens are loaded
	readyOnce  sync.Once
	hubSecret  string
	sysSecret  string
	sys        atomic.Pointer[server.Account]
	observer   atomic.Bool
	monitoring atomic.Bool                        // nats.monitor is on: admins may connect as SystemUser
	agentAdmit atomic.Pointer[func(string) error] // SetAgentAdmission
	mu         sync.RWMutex
	byHash     map[string]Identity
	byID       map[string]Identity // by TokenID: the caller of a token command
}

var _ server.Authentication = (*Authenticator)(nil)

// NewAuthenticator returns an authenticator with a fresh hub secret.
func NewAuthenticator() *Authenticator {
	return &Authenticator{ready: make(chan struct{}), hubSecret: NewToken(), sysSecret: NewToken(),
		byHash: map[string]Identity{}, byID: map[string]Identity{}}
}

// readyWait bounds how long a connection waits for the stored tokens.
const readyWait = 10 * time.Second

// MarkReady says the stored tokens are loaded. Until then other clients'
// connections wait (up to readyWait) instead of being refused, so a
// sidecar that reconnects while the hub starts is not turned away.
func (a *Authenticator) MarkReady() { a.readyOnce.Do(func() { close(a.ready) }) }

// setSystemAccount lets the hub's system connection into the server's
// system account, where connection advisories are published.
func (a *Authenticator) setSystemAccount(acc *server.Account) { a.sys.Store(acc) }

// AllowObserver lets connections without any credentials in as
// observers: they may subscribe to telemetry (agent_com.>) and nothing
// else, and publish nothing.
func (a *Authenticator) AllowObserver(on bool) { a.observer.Store(on) }

// ObserverPermissions are an anonymous observer's.
func ObserverPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Deny: []string{">"}},
		Subscribe: &server.SubjectPermission{Allow: []string{TelemetryAll}},
	}
}

// SystemPermissions let the system user ask the server for its
// monitoring pages (varz, connz, jsz...) and read the answers, and nothing
// else: no reload, no kick, no lame-duck mode, no account claims.
func SystemPermissions() *server.Permissions {
	allow := []string{SysServerPing}
	for _, page := range SysMonitorPages {
		allow = append(allow, fmt.Sprintf(SysServerPingT, page), fmt.Sprintf(SysServerReqT, page))
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: allow},
		Subscribe: &server.SubjectPermission{Allow: []string{InboxAll}},
	}
}

// HubSecret is the token of the hub's own connection.
func (a *Authenticator) HubSecret() string { return a.hubSecret }

// Set makes a token hash valid for an identity.
func (a *Authenticator) Set(hash string, id Identity) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id.TokenID = hash[:TokenIDLen]
	a.byHash[hash] = id
	a.byID[id.TokenID] = id
}

// Remove revokes a token hash.
func (a *Authenticator) Remove(hash string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.byHash, hash)
	delete(a.byID, hash[:TokenIDLen])
}

// ByTokenID returns the identity of the token a token command came under.
func (a *Authenticator) ByTokenID(id string) (Identity, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	ident, ok := a.byID[id]
	return ident, ok
}

// Lookup returns the identity of a presented token.
func (a *Authenticator) Lookup(token string) (Identity, bool) {
	if token == "" {
		return Identity{}, false
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(a.hubSecret)) == 1 {
		return Identity{Name: "hub", Role: RoleHub}, true
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	id, ok := a.byHash[HashToken(token)]
	return id, ok
}

// Check implements server.Authentication. The hub's in-process connection
// gets full permissions (its secret is refused over the network); an
// admin gets AdminPermissions, an agent only its own subjects
// (AgentPermissions); every other connection is refused.
func (a *Authenticator) Check(c server.ClientAuthentication) bool {
	opts := c.GetOpts()
	token := opts.Token
	if token == "" {
		token = opts.Password
	}
	if sys := a.sys.Load(); sys != nil && token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(a.sysSecret)) == 1 && inProcess(c) {
		c.RegisterUser(&server.User{Username: "hub:system", Account: sys})
		return true
	}
	if opts.Username == SystemUser {
		return a.checkSystem(c, token)
	}
	if token == "" && opts.Username == "" && a.observer.Load() {
		c.RegisterUser(&server.User{Username: "observer", Permissions: ObserverPermissions()})
		return true
	}
	if token != a.hubSecret {
		select {
		case <-a.ready:
		case <-time.After(readyWait):
		}
	}
	id, ok := a.Lookup(token)
	if !ok {
		return false
	}
	switch id.Role {
	case RoleHub:
		if !inProcess(c) {
			return false
		}
		c.RegisterUser(&server.User{Username: string(id.Role) + ":" + id.Name})
	case RoleAdmin:
		c.RegisterUser(&server.User{Username: UserOf(id), Permissions: AdminPermissions(id.TokenID)})
	case RoleViewer:
		c.RegisterUser(&server.User{Username: UserOf(id), Permissions: ViewerPermissions(id.TokenID)})
	case RoleAgent:
		if a.admitAgent(id.Name) != nil {
			return false
		}
		c.RegisterUser(&server.User{Username: AgentUser(id.Name), Permissions: AgentPermissions(id.Name, id.TokenID)})
	default:
		return false
	}
	return true
}

// SystemUser is the user name an admin connects with, its token as the
// password, to read the server's monitoring over NATS (nats server report)
// while nats.monitor is on.
const SystemUser = "system"

// checkSystem lets an admin's token into the system account, with
// SystemPermissions only, while monitoring is on.
func (a *Authenticator) checkSystem(c server.ClientAuthentication, token string) bool {
	sys := a.sys.Load()
	if sys == nil || !a.monitoring.Load() {
		return false
	}
	if id, ok := a.Lookup(token); !ok || id.Role != RoleAdmin {
		return false
	}
	c.RegisterUser(&server.User{Username: SystemUser, Account: sys, Permissions: SystemPermissions()})
	return true
}

// inProcess reports whether a connection is the hub's own, in-process
// one (a net.Pipe), not one over the network.
func inProcess(c server.ClientAuthentication) bool {
	addr := c.RemoteAddress()
	return addr != nil && addr.Network() == "pipe"
}

// AdminPermissions let an admin (the CLI) send hub commands, on the
// plain command subjects or under its own token id, and read everything,
// and publish nothing else: no event, no JetStream API call (so no purge,
// delete, update, rollup or snapshot of the hub's streams and buckets), no
// KV write. What an admin may change, it changes through the hub's
// commands, which the hub checks and records.
func AdminPermissions(tokenID string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{CommandsAll, TokenCommands(tokenID)}, Deny: HubOnlySubjects()},
	}
}

// ViewerPermissions let a viewer send hub commands under its own token id
// only (the hub answers the reads and refuses the rest, 403), receive its
// answers in its own inbox, and watch telemetry: nothing else, so no
// other client's commands, answers or pushes.
func ViewerPermissions(tokenID string) *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{TokenCommands(tokenID)}, Deny: HubOnlySubjects()},
		Subscribe: &server.SubjectPermission{Allow: []string{TokenInbox(tokenID) + ".>", TelemetryAll}},
	}
}

// AgentUser is the NATS user name of an agent's connection.
func AgentUser(agentID string) string { return "agent:" + agentID }

// UserOf is the NATS user name of a connection made as id: role:name.
func UserOf(id Identity) string { return string(id.Role) + ":" + id.Name }

// AgentPermissions lets an agent publish only its own requests, its log
// records and hub commands under its own token id (the hub answers the
// reads that concern the agent), and subscribe only to its own pushes and
// its own inboxes. It cannot touch other agents' subjects, the event
// stream, the JetStream API or telemetry.
func AgentPermissions(agentID, tokenID string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{fmt.Sprintf(AgentPublishT, agentID), LogAgent(agentID),
			TokenCommands(tokenID)}, Deny: HubOnlySubjects()},
		Subscribe: &server.SubjectPermission{Allow: []string{
			fmt.Sprintf(PushAllT, agentID), AgentInbox(agentID) + ".>", TokenInbox(tokenID) + ".>",
		}},
	}
}

// NewToken returns a new random token: "ac_" and 43 base64url characters
// (256 bits).
func NewToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "ac_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashToken returns the hex SHA-256 of a token. Tokens carry 256 random
// bits, so a fast hash is enough; only hashes are ever stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
