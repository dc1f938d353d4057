// Package config builds AgentCom's typed configuration from, in rising
// precedence, defaults, an optional YAML file (--config), AGENTCOM_*
// environment variables and command-line flags, using viper. Every key is
// validated at start; an invalid value is refused with an error that
// names the key.
//
// Keys use dots in files (nats.listen) and underscores in the environment
// (AGENTCOM_NATS_LISTEN).
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/agentcom/agentcom/logsink"
)

// Defaults.
const (
	DefaultNATSListen = "127.0.0.1:4222"
	DefaultHTTPListen = "127.0.0.1:4000"
	DefaultHub        = "nats://127.0.0.1:4222"
	DefaultSync       = "always"
	DefaultLogLevel   = "info"
	DefaultLogFormat  = logsink.FormatAuto
	// DefaultLogMaxSizeMB and DefaultLogMaxBackups shape the rotated files.
	DefaultLogMaxSizeMB  = 10
	DefaultLogMaxBackups = 5
)

// LogLevels are the valid values of log.level.
var LogLevels = []string{"debug", "info", "notice", "warning", "error"}

// LogFormats are the valid values of log.format: auto (console lines on a
// terminal, JSON otherwise), json and console. They shape stdout only.
var LogFormats = logsink.Formats

// DefaultDataDir is $XDG_DATA_HOME/agentcom, else ~/.local/share/agentcom,
// else ./agentcom-data when there is no home directory.
func DefaultDataDir() string {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "agentcom")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "agentcom")
	}
	return "agentcom-data"
}

// setLogDefaults sets the log keys' defaults, the same for hub and sidecar.
func setLogDefaults(v *viper.Viper) {
	v.SetDefault("log.level", DefaultLogLevel)
	v.SetDefault("log.format", DefaultLogFormat)
	v.SetDefault("log.max_size_mb", DefaultLogMaxSizeMB)
	v.SetDefault("log.max_backups", DefaultLogMaxBackups)
	v.SetDefault("log.stream_max_mb", 0)
	v.SetDefault("log.modules", map[string]string{})
}

// newViper returns a viper reading AGENTCOM_* variables.
func newViper() *viper.Viper {
	v := viper.New()
	v.SetEnvPrefix("AGENTCOM")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	return v
}

// bind connects flags to keys, and reads the file named by --config.
func bind(v *viper.Viper, fs *pflag.FlagSet, flags map[string]string) error {
	for key, flag := range flags {
		if f := fs.Lookup(flag); f != nil {
			if err := v.BindPFlag(key, f); err != nil {
				return fmt.Errorf("bind flag --%s: %w", flag, err)
			}
		}
	}
	f := fs.Lookup("config")
	if f == nil || f.Value.String() == "" {
		return nil
	}
	v.SetConfigFile(f.Value.String())
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		return fmt.Errorf("read config file %s: %w", f.Value.String(), err)
	}
	return nil
}

func checkListen(key, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %q is not host:port", key, addr)
	}
	if host == "" {
		return fmt.Errorf("%s: %q has no host; use 127.0.0.1 or 0.0.0.0 explicitly", key, addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s: port %q must be a number from 0 to 65535", key, port)
	}
	return nil
}

func checkOneOf(key, val string, allowed []string) error {
	for _, a := range allowed {
		if a == val {
			return nil
		}
	}
	return fmt.Errorf("%s: %q is not one of %s", key, val, strings.Join(allowed, ", "))
}

// parseSync reads store.sync: "always" (0) or an interval.
func parseSync(s string) (time.Duration, error) {
	if s == "always" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Millisecond {
		return 0, errors.New(`store.sync: must be "always" or an interval of at least 1ms such as "1s"`)
	}
	return d, nil
}
