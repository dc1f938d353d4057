package broker

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
)

// Role is what a token may do.
type Role string

// The roles. The hub's own connection uses RoleHub; operators and the CLI
// use RoleAdmin.
const (
	RoleHub   Role = "hub"
	RoleAdmin Role = "admin"
)

// Identity is who a connection or an HTTP request authenticated as.
type Identity struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

// Authenticator checks tokens presented by NATS clients and HTTP callers.
// It knows tokens only by their SHA-256 hash; the hub's own in-process
// connection uses a random secret that lives only in memory.
type Authenticator struct {
	hubSecret string
	mu        sync.RWMutex
	byHash    map[string]Identity
}

var _ server.Authentication = (*Authenticator)(nil)

// NewAuthenticator returns an authenticator with a fresh hub secret.
func NewAuthenticator() *Authenticator {
	return &Authenticator{hubSecret: NewToken(), byHash: map[string]Identity{}}
}

// HubSecret is the token of the hub's own connection.
func (a *Authenticator) HubSecret() string { return a.hubSecret }

// Set makes a token hash valid for an identity.
func (a *Authenticator) Set(hash string, id Identity) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.byHash[hash] = id
}

// Remove revokes a token hash.
func (a *Authenticator) Remove(hash string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.byHash, hash)
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

// Check implements server.Authentication. The hub and admins get full
// permissions; every other connection is refused.
func (a *Authenticator) Check(c server.ClientAuthentication) bool {
	opts := c.GetOpts()
	token := opts.Token
	if token == "" {
		token = opts.Password
	}
	id, ok := a.Lookup(token)
	if !ok {
		return false
	}
	c.RegisterUser(&server.User{Username: id.Name})
	return true
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
