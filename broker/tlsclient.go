package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

// ClientTLS is how a client (the CLI, a sidecar) checks the hub's
// certificate: CA is the file of the CA that signed it (empty: the
// system's roots); Cert and Key are the client's own, for a hub that asks
// for client certificates (mutual TLS).
type ClientTLS struct {
	CA, Cert, Key string
}

// Options are the nats.go options of c: none when c is empty, and the
// server's certificate is then checked against the system's roots if the
// hub asks for TLS.
func (c ClientTLS) Options() []nats.Option {
	var opts []nats.Option
	if c.CA != "" {
		opts = append(opts, nats.RootCAs(c.CA))
	}
	if c.Cert != "" || c.Key != "" {
		opts = append(opts, nats.ClientCert(c.Cert, c.Key))
	}
	return opts
}

// ExplainTLS says in words what a TLS failure means for a client of the
// hub at url, or returns err as it is when it is not one.
func ExplainTLS(url string, err error) error {
	var host x509.HostnameError
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	switch {
	case errors.As(err, &host):
		return fmt.Errorf("the hub's certificate does not match %s (it is for %s): %w", url, certNames(host.Certificate), err)
	case errors.As(err, &unknown):
		return fmt.Errorf("the hub's certificate is not signed by a CA this client trusts (set tls_ca, --tls-ca): %w", err)
	case errors.As(err, &invalid):
		return fmt.Errorf("the hub's certificate is not valid: %w", err)
	case errors.As(err, &record), errors.Is(err, nats.ErrSecureConnWanted):
		return fmt.Errorf("the hub at %s does not speak TLS, or this client does not: %w", url, err)
	case errors.Is(err, nats.ErrSecureConnRequired) || strings.Contains(err.Error(), "secure connection required"):
		return fmt.Errorf("the hub at %s requires TLS (use tls://, and tls_ca if its CA is not a system one): %w", url, err)
	case strings.Contains(err.Error(), "certificate required") || strings.Contains(err.Error(), "bad certificate"):
		return fmt.Errorf("the hub asks for a client certificate (set tls_cert and tls_key): %w", err)
	}
	return err
}

func certNames(c *x509.Certificate) string {
	if c == nil {
		return "unknown names"
	}
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return c.Subject.CommonName
	}
	return strings.Join(names, ", ")
}
