package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentcom/agentcom/atomicfile"
)

// AdminTokenFile is the name, under the data directory, of the file that
// holds the admin token (mode 0600).
const AdminTokenFile = "admin.token"

const adminKey = "admin"

// TokenRecord is what the hub keeps of a token: its hash, never the token.
type TokenRecord struct {
	Hash      string    `json:"hash"`
	Prefix    string    `json:"prefix"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// TokenStore keeps token hashes in a KV bucket and feeds them to the
// Authenticator.
type TokenStore struct {
	kv   jetstream.KeyValue
	auth *Authenticator
	// mu makes each change of an agent's token one step: read the old
	// record, write the bucket, update auth. Without it two concurrent
	// creates (or a create and a revoke) leave auth holding a hash the
	// bucket no longer has, valid until restart.
	mu sync.Mutex
}

// OpenTokens opens (creating if needed) the token bucket and loads every
// stored hash into auth.
func OpenTokens(ctx context.Context, nc *nats.Conn, auth *Authenticator) (*TokenStore, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      TokensBucket,
		Description: "AgentCom token hashes",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("create token bucket: %w", err)
	}
	ts := &TokenStore{kv: kv, auth: auth}
	if err := ts.load(ctx); err != nil {
		return nil, err
	}
	auth.MarkReady()
	return ts, nil
}

func (ts *TokenStore) load(ctx context.Context) error {
	keys, err := ts.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	for key := range keys.Keys() {
		rec, err := ts.get(ctx, key)
		if err != nil {
			return err
		}
		ts.auth.Set(rec.Hash, Identity{Name: rec.Name, Role: rec.Role})
	}
	return nil
}

func (ts *TokenStore) get(ctx context.Context, key string) (TokenRecord, error) {
	e, err := ts.kv.Get(ctx, key)
	if err != nil {
		return TokenRecord{}, fmt.Errorf("get token %s: %w", key, err)
	}
	var rec TokenRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return TokenRecord{}, fmt.Errorf("decode token %s: %w", key, err)
	}
	return rec, nil
}

// EnsureAdmin makes sure an admin token exists and that dataDir/admin.token
// holds it. At first start it creates one. If the file is missing or holds
// another token, it rotates the admin token: deleting the file and
// restarting the hub is how an operator replaces a leaked admin token.
// It reports whether a new token was written.
func (ts *TokenStore) EnsureAdmin(ctx context.Context, dataDir string) (bool, error) {
	path := filepath.Join(dataDir, AdminTokenFile)
	current, err := ts.get(ctx, adminKey)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, err
	}
	if err == nil {
		if b, rerr := os.ReadFile(path); rerr == nil && HashToken(strings.TrimSpace(string(b))) == current.Hash {
			return false, nil
		}
		ts.auth.Remove(current.Hash)
	}
	token := NewToken()
	if err := atomicfile.Write(path, 0o600, []byte(token+"\n")); err != nil {
		return false, err
	}
	rec := TokenRecord{Hash: HashToken(token), Prefix: token[:8], Name: "admin", Role: RoleAdmin, CreatedAt: time.Now().UTC()}
	b, err := json.Marshal(rec)
	if err != nil {
		return false, fmt.Errorf("encode admin token: %w", err)
	}
	if _, err := ts.kv.Put(ctx, adminKey, b); err != nil {
		return false, fmt.Errorf("store admin token: %w", err)
	}
	ts.auth.Set(rec.Hash, Identity{Name: rec.Name, Role: rec.Role})
	return true, nil
}

// tokenKey is a named token's key in the bucket: <role>.<name>.
func tokenKey(role Role, name string) string { return string(role) + "." + name }

// ErrNameTaken means a token of another role has the name.
var ErrNameTaken = errors.New("the name is another role's token")

// CreateAgent makes a new token for an agent (Create with RoleAgent).
func (ts *TokenStore) CreateAgent(ctx context.Context, agentID string) (string, TokenRecord, error) {
	return ts.Create(ctx, agentID, RoleAgent)
}

// Create makes a new token of role for name and returns it; it replaces
// any token of that name and role (the caller closes connections made
// with the old one). A name is one token's: one held by another role is
// ErrNameTaken. Only the hash is kept.
func (ts *TokenStore) Create(ctx context.Context, name string, role Role) (string, TokenRecord, error) {
	return ts.create(ctx, name, role, false)
}

// ErrRegistered means the agent has a token already.
var ErrRegistered = errors.New("the agent is registered already")

// Register makes the first token of a new agent: a name with any token
// already is ErrRegistered (or ErrNameTaken), decided by the bucket's
// create-if-absent, so two registrations of one name cannot both win.
func (ts *TokenStore) Register(ctx context.Context, agentID string) (string, TokenRecord, error) {
	return ts.create(ctx, agentID, RoleAgent, true)
}

func (ts *TokenStore) create(ctx context.Context, name string, role Role, fresh bool) (string, TokenRecord, error) {
	if !slices.Contains(TokenRoles, role) {
		return "", TokenRecord{}, fmt.Errorf("create token: unknown role %q", role)
	}
	token := NewToken()
	rec := TokenRecord{Hash: HashToken(token), Prefix: token[:8], Name: name, Role: role, CreatedAt: time.Now().UTC()}
	b, err := json.Marshal(rec)
	if err != nil {
		return "", TokenRecord{}, fmt.Errorf("encode %s token: %w", role, err)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, other := range TokenRoles {
		if _, err := ts.get(ctx, tokenKey(other, name)); other != role && err == nil {
			return "", TokenRecord{}, fmt.Errorf("create token %s: %w (%s)", name, ErrNameTaken, other)
		}
	}
	if err := ts.store(ctx, rec, b, fresh); err != nil {
		return "", TokenRecord{}, err
	}
	ts.auth.Set(rec.Hash, Identity{Name: name, Role: role})
	return token, rec, nil
}

// store writes rec (encoded as b) under its key: only where there is none
// when fresh, else over the old token, which stops authenticating.
func (ts *TokenStore) store(ctx context.Context, rec TokenRecord, b []byte, fresh bool) error {
	key := tokenKey(rec.Role, rec.Name)
	if fresh {
		if _, err := ts.kv.Create(ctx, key, b); errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("register agent %s: %w", rec.Name, ErrRegistered)
		} else if err != nil {
			return fmt.Errorf("store %s token: %w", rec.Role, err)
		}
		return nil
	}
	old, oldErr := ts.get(ctx, key)
	if _, err := ts.kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("store %s token: %w", rec.Role, err)
	}
	if oldErr == nil {
		ts.auth.Remove(old.Hash)
	}
	return nil
}

// List returns every named token's record (agents', viewers' and named
// admins', not the admin.token file's), by name. People are shown the
// prefix only (TokenRecord.Prefix).
func (ts *TokenStore) List(ctx context.Context) ([]TokenRecord, error) {
	lister, err := ts.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	var out []TokenRecord
	for key := range lister.Keys() {
		if key == adminKey {
			continue
		}
		rec, err := ts.get(ctx, key)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	slices.SortFunc(out, func(a, b TokenRecord) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// ErrNoToken means no token has the name.
var ErrNoToken = errors.New("no token of that name")

// RevokeAgent deletes an agent's token (Revoke of an agent's name).
func (ts *TokenStore) RevokeAgent(ctx context.Context, agentID string) error {
	_, err := ts.Revoke(ctx, agentID)
	return err
}

// Revoke deletes the token of a name, whatever its role, and returns its
// record; its open connections keep running until the caller closes them
// (Server.DisconnectAgent, Server.DisconnectToken).
func (ts *TokenStore) Revoke(ctx context.Context, name string) (TokenRecord, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, role := range TokenRoles {
		rec, err := ts.get(ctx, tokenKey(role, name))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		} else if err != nil {
			return TokenRecord{}, err
		}
		if err := ts.kv.Delete(ctx, tokenKey(role, name)); err != nil {
			return TokenRecord{}, fmt.Errorf("revoke %s: %w", name, err)
		}
		ts.auth.Remove(rec.Hash)
		return rec, nil
	}
	return TokenRecord{}, fmt.Errorf("revoke %s: %w", name, ErrNoToken)
}
