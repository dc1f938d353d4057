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
}

var clientFlags = map[string]string{"hub": "hub", "token": "token", "data_dir": "data-dir"}

// ClientFlags defines the client flags on fs.
func ClientFlags(fs *pflag.FlagSet) {
	fs.String("hub", DefaultHub, "hub NATS URL (env AGENTCOM_HUB)")
	fs.String("token", "", "token (env AGENTCOM_TOKEN; default: the admin token file in --data-dir)")
	fs.String("data-dir", DefaultDataDir(), "hub data directory, to find admin.token")
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
