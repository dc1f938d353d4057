package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// testPKI is a CA made in the test, a server certificate it signed for
// 127.0.0.1 and localhost, and a client certificate it signed.
type testPKI struct {
	dir                            string
	ca, cert, key, cliCert, cliKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agentcom test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	p := testPKI{dir: dir, ca: writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)}
	issue := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP, dns []string) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, DNSNames: dns}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "EC PRIVATE KEY", keyDER)
	}
	p.cert, p.key = issue("hub", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	p.cliCert, p.cliKey = issue("client", 3, x509.ExtKeyUsageClientAuth, nil, nil)
	return p
}

func writePEM(t *testing.T, dir, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600))
	return path
}

// onLoopback is a listener URL of the hub's (on 0.0.0.0) at 127.0.0.1, the
// address its certificate names.
func onLoopback(t *testing.T, raw, host string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	u.Host = net.JoinHostPort(host, u.Port())
	return u.String()
}

// A hub beyond loopback with TLS on both listeners (mutual TLS on HTTP):
// the CLI and a sidecar work when they trust its CA, a client that does
// not, a wrong name and a plain-text connection are each refused with a
// clear reason, and the same hub without TLS will not start.
func TestTLSBeyondLoopback(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	dataDir := t.TempDir()
	cmd := exec.Command(bin, "hub", "--data-dir", dataDir, "--nats-listen", "0.0.0.0:0", "--http-listen", "0.0.0.0:0")
	cmd.Env = append(os.Environ(), "AGENTCOM_NATS_TLS_CERT="+pki.cert, "AGENTCOM_NATS_TLS_KEY="+pki.key,
		"AGENTCOM_HTTP_TLS_CERT="+pki.cert, "AGENTCOM_HTTP_TLS_KEY="+pki.key, "AGENTCOM_HTTP_TLS_CLIENT_CA="+pki.ca)
	h := startHubCmd(t, cmd, dataDir)
	require.True(t, strings.HasPrefix(h.natsURL, "tls://"), h.natsURL)
	require.True(t, strings.HasPrefix(h.httpURL, "https://"), h.httpURL)
	wrongName := onLoopback(t, h.natsURL, "127.0.0.2") // loopback too, but not in the certificate
	h.natsURL = onLoopback(t, h.natsURL, "127.0.0.1")
	trust := []string{"AGENTCOM_TLS_CA=" + pki.ca}

	// The CLI over TLS, trusting the test CA.
	out, errOut, code := cliEnv(t, h, trust, "task", "submit", "over tls")
	require.Equal(t, 0, code, errOut)
	taskID := strings.TrimSpace(out)
	_, errOut, code = cliEnv(t, h, nil, "task", "list")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "not signed by a CA this client trusts")
	_, errOut, code = cliEnv(t, h, append(trust, "AGENTCOM_HUB="+wrongName), "task", "list")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "does not match "+wrongName+" (it is for localhost, 127.0.0.1)")

	// A plain-text client is refused.
	_, err := nats.Connect(strings.Replace(h.natsURL, "tls://", "nats://", 1), nats.Token(h.token))
	require.Error(t, err, "a plain-text connection")

	// A sidecar over TLS does the task.
	out, errOut, code = cliEnv(t, h, trust, "token", "create", "a1")
	require.Equal(t, 0, code, errOut)
	startSidecarWithToken(t, h.natsURL, "a1", strings.TrimSpace(out), "true", nil, "--tls-ca", pki.ca)
	h.waitTaskTLS(t, taskID, pki)

	// HTTPS asks for a client certificate signed by the client CA.
	httpsURL := onLoopback(t, h.httpURL, "127.0.0.1")
	resp, err := httpsClient(t, pki, true).Get(httpsURL + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = httpsClient(t, pki, false).Get(httpsURL + "/health")
	require.Error(t, err, "no client certificate")
	resp, err = http.Get(strings.Replace(httpsURL, "https://", "http://", 1) + "/health")
	require.NoError(t, err, "Go's TLS server answers plain HTTP itself")
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP on the TLS port is not served")

	// Beyond loopback without TLS, the hub will not start.
	plain := exec.Command(bin, "hub", "--data-dir", t.TempDir(), "--nats-listen", "0.0.0.0:0", "--http-listen", "127.0.0.1:0")
	msg, err := plain.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(msg), "nats.listen: 0.0.0.0:0 is beyond loopback without TLS")
}

// waitTaskTLS waits for a task to complete, reading it with the CLI over TLS.
func (h *hubProc) waitTaskTLS(t *testing.T, id string, pki testPKI) {
	t.Helper()
	require.Eventually(t, func() bool {
		var task struct{ Status string }
		out, _, code := cliEnv(t, h, []string{"AGENTCOM_TLS_CA=" + pki.ca}, "task", "show", id, "--json")
		return code == 0 && json.Unmarshal([]byte(out), &task) == nil && task.Status == "completed"
	}, 30*time.Second, 100*time.Millisecond, "task %s never completed over TLS", id)
}

func httpsClient(t *testing.T, pki testPKI, withCert bool) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(pki.ca)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pem))
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if withCert {
		cert, err := tls.LoadX509KeyPair(pki.cliCert, pki.cliKey)
		require.NoError(t, err)
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
}
