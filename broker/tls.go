package broker

import (
	"crypto/tls"
	"fmt"

	"github.com/nats-io/nats-server/v2/server"
)

// TLSFiles are a listener's certificate and key files, and the CA that
// client certificates must be signed by ("": no client certificates).
type TLSFiles struct {
	Cert, Key, ClientCA string
}

// On reports whether TLS is configured.
func (f TLSFiles) On() bool { return f.Cert != "" }

// TLSConfig builds a listener's TLS from its files with the NATS server's
// own builder (its ciphers and minimum version), for the NATS listener
// and the HTTP one alike. With a client CA, a client must present a
// certificate it signed (mutual TLS).
func TLSConfig(f TLSFiles) (*tls.Config, error) {
	cfg, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: f.Cert, KeyFile: f.Key, CaFile: f.ClientCA,
		Verify: f.ClientCA != ""})
	if err != nil {
		return nil, fmt.Errorf("load tls certificate %s: %w", f.Cert, err)
	}
	return cfg, nil
}
