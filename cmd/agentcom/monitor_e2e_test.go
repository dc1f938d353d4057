package main

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// With nats.monitor on, the embedded server's monitoring pages answer on
// loopback, and the nats CLI's server reports work for an admin's token as
// the system user; a viewer's token does not get in, nor an admin's while
// monitoring is off; a monitor beyond loopback stops the hub at start.
func TestNATSMonitoringServesTheNATSTools(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", []string{"AGENTCOM_NATS_MONITOR=127.0.0.1:0"})
	require.NotEmpty(t, h.monitorURL, "the ready line names the monitoring port")
	for _, page := range []string{"/varz", "/connz", "/jsz"} {
		resp, err := http.Get(h.monitorURL + page)
		require.NoError(t, err)
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body), page)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, page)
		if page == "/jsz" {
			require.GreaterOrEqual(t, body["streams"], 4.0, "events, tokens, logs, telemetry at least")
		}
	}
	nats := natsCLI(t)
	report := func(password string) (string, error) {
		out, err := exec.Command(nats, "--server", h.natsURL, "--user", "system", "--password", password,
			"server", "report", "jetstream").CombinedOutput()
		return string(out), err
	}
	out, err := report(h.token)
	require.NoError(t, err, out)
	require.Contains(t, out, "agentcom-hub")
	viewer, errOut, code := cli(t, h, "token", "create", "--role", "viewer", "dash")
	require.Equal(t, 0, code, errOut)
	out, err = report(viewer[:len(viewer)-1])
	require.Error(t, err, "a viewer is no system user: %s", out)

	off := startHubProc(t, t.TempDir())
	require.Empty(t, off.monitorURL)
	offOut, err := exec.Command(nats, "--server", off.natsURL, "--user", "system", "--password", off.token,
		"server", "report", "jetstream").CombinedOutput()
	require.Error(t, err, "no system user while monitoring is off: %s", offOut)

	wide := exec.Command(bin, "hub", "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
	wide.Env = append(wide.Environ(), "AGENTCOM_NATS_MONITOR=0.0.0.0:0")
	msg, err := wide.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(msg), "nats.monitor: 0.0.0.0:0 is beyond loopback")
}
