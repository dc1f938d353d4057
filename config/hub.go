package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
)

// Hub is the hub's configuration.
type Hub struct {
	// NATS.Listen is where the embedded NATS server takes clients.
	// Defaults to 127.0.0.1:4222; port 0 picks a free port.
	NATS Listener `mapstructure:"nats"`
	// HTTP.Listen is where the HTTP API listens. Defaults to 127.0.0.1:4000.
	HTTP Listener `mapstructure:"http"`
	// DataDir holds the JetStream store and admin.token. Defaults to
	// DefaultDataDir().
	DataDir string `mapstructure:"data_dir"`
	// Store holds durability settings.
	Store Store `mapstructure:"store"`
	// Log holds logging settings.
	Log Log `mapstructure:"log"`
}

// Listener is one listening address.
type Listener struct {
	Listen string `mapstructure:"listen"`
}

// Store is the event store's durability setting.
type Store struct {
	// Sync is "always" (fsync every write before acknowledging it; the
	// default) or an interval such as "1s" (fsync at most that often).
	Sync string `mapstructure:"sync"`
	// SyncInterval is Sync parsed: 0 for always.
	SyncInterval time.Duration `mapstructure:"-"`
}

// Log is the logging setting.
type Log struct {
	// Level is the lowest level written: debug, info, notice, warning or
	// error. Defaults to info.
	Level string `mapstructure:"level"`
}

var hubFlags = map[string]string{
	"nats.listen": "nats-listen",
	"http.listen": "http-listen",
	"data_dir":    "data-dir",
	"store.sync":  "sync",
	"log.level":   "log-level",
}

// HubFlags defines the hub's flags on fs.
func HubFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML config file")
	fs.String("nats-listen", DefaultNATSListen, "NATS client listen address (port 0 picks one)")
	fs.String("http-listen", DefaultHTTPListen, "HTTP API listen address (port 0 picks one)")
	fs.String("data-dir", DefaultDataDir(), "data directory (JetStream store, admin.token)")
	fs.String("sync", DefaultSync, `fsync policy: "always" or an interval such as "1s"`)
	fs.String("log-level", DefaultLogLevel, "log level: debug, info, notice, warning, error")
}

// LoadHub builds and validates the hub configuration. fs holds the flags
// from HubFlags.
func LoadHub(fs *pflag.FlagSet) (Hub, error) {
	v := newViper()
	v.SetDefault("nats.listen", DefaultNATSListen)
	v.SetDefault("http.listen", DefaultHTTPListen)
	v.SetDefault("data_dir", DefaultDataDir())
	v.SetDefault("store.sync", DefaultSync)
	v.SetDefault("log.level", DefaultLogLevel)
	if err := bind(v, fs, hubFlags); err != nil {
		return Hub{}, err
	}
	var h Hub
	if err := v.UnmarshalExact(&h); err != nil {
		return Hub{}, fmt.Errorf("load config: %w", err)
	}
	return h, h.validate()
}

// validate checks every key and fills derived fields.
func (h *Hub) validate() error {
	errs := []error{
		checkListen("nats.listen", h.NATS.Listen),
		checkListen("http.listen", h.HTTP.Listen),
		checkOneOf("log.level", h.Log.Level, LogLevels),
	}
	d, err := parseSync(h.Store.Sync)
	h.Store.SyncInterval = d
	errs = append(errs, err)
	if h.DataDir == "" {
		errs = append(errs, errors.New("data_dir: must not be empty"))
	} else if abs, err := filepath.Abs(h.DataDir); err == nil {
		h.DataDir = abs
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid config: %w", err)
	}
	return nil
}
