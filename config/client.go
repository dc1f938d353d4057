package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// Client is how CLI commands reach a running hub.
type Client struct {
	// Hub is the hub's NATS URL. Defaults to nats://127.0.0.1:4222.
	Hub string `mapstructure:"hub"`
	// Token authenticates; when empty, the admin token file under DataDir
	// is read.
	Token string `mapstructure:"token"`
	// DataDir is where to find admin.token.
	DataDir string `mapstructure:"data_dir"`
	// TLS checks the hub's certificate.
	TLS ClientTLS `mapstructure:",squash"`
}

// ClientTLS is how a client checks a hub that speaks TLS: the CA file
// that signed the hub's certificate (empty: the system's roots), and the
// client's own certificate and key for a hub that asks for one.
type ClientTLS struct {
	CA   string `mapstructure:"tls_ca"`
	Cert string `mapstructure:"tls_cert"`
	Key  string `mapstructure:"tls_key"`
}

var clientFlags = map[string]string{"hub": "hub", "token": "token", "data_dir": "data-dir",
	"tls_ca": "tls-ca", "tls_cert": "tls-cert", "tls_key": "tls-key"}

// ClientFlags defines the client flags on fs.
func ClientFlags(fs *pflag.FlagSet) {
	fs.String("hub", DefaultHub, "hub NATS URL (env AGENTCOM_HUB)")
	fs.String("token", "", "token (env AGENTCOM_TOKEN; default: the admin token file in --data-dir)")
	fs.String("data-dir", DefaultDataDir(), "hub data directory, to find admin.token")
	tlsFlags(fs)
}

// tlsFlags defines the client TLS flags.
func tlsFlags(fs *pflag.FlagSet) {
	fs.String("tls-ca", "", "CA file that signed the hub's certificate (env AGENTCOM_TLS_CA; default: the system's)")
	fs.String("tls-cert", "", "client certificate, for a hub that asks for one (env AGENTCOM_TLS_CERT)")
	fs.String("tls-key", "", "the client certificate's key (env AGENTCOM_TLS_KEY)")
}

// ErrNoToken is LoadClient's error when no token was given and the token
// file gives none: the Client it returns alongside is complete otherwise,
// for commands that may go on without one.
var ErrNoToken = errors.New("no token")

// LoadClient builds the client configuration and resolves the token.
func LoadClient(fs *pflag.FlagSet, tokenFile string) (Client, error) {
	v := newViper()
	v.SetDefault("hub", DefaultHub)
	v.SetDefault("token", "")
	v.SetDefault("data_dir", DefaultDataDir())
	for _, key := range []string{"tls_ca", "tls_cert", "tls_key"} {
		v.SetDefault(key, "")
	}
	if err := bind(v, fs, clientFlags); err != nil {
		return Client{}, err
	}
	var c Client
	if err := v.Unmarshal(&c); err != nil {
		return Client{}, fmt.Errorf("load client config: %w", err)
	}
	if c.Token != "" {
		return c, nil
	}
	path := filepath.Join(c.DataDir, tokenFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("%w: pass --token, set AGENTCOM_TOKEN, or point --data-dir at the hub's data directory (%w)",
			ErrNoToken, err)
	}
	c.Token = strings.TrimSpace(string(b))
	if c.Token == "" {
		return c, fmt.Errorf("%w: %s is empty; pass --token or set AGENTCOM_TOKEN", ErrNoToken, path)
	}
	return c, nil
}
