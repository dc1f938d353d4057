package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/agentcom/agentcom/client"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/hub"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/protocol/ops"
)

// target is the hub a run measures: its NATS URL, an admin token and an
// admin client; for an embedded hub, how to stop it and remove its data.
type target struct {
	url, token string
	admin      *client.Client
	embedded   bool
	stop       func()
}

// startEmbedded runs a hub in a new temporary data directory with the
// given store.sync, configured as `agentcom hub` would be (defaults and
// AGENTCOM_* variables), on free ports, logging warnings and errors to
// logw. The one change: no per-agent request budget, so that a few
// workers can go as fast as the hub does.
func startEmbedded(ctx context.Context, parent, sync string, logw io.Writer) (*target, error) {
	dir, err := os.MkdirTemp(parent, "agentcom-bench-")
	if err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	t, err := startHubIn(ctx, dir, sync, logw)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return t, nil
}

func startHubIn(ctx context.Context, dir, sync string, logw io.Writer) (*target, error) {
	cfg, err := embeddedConfig(dir, sync)
	if err != nil {
		return nil, err
	}
	if logw == nil {
		logw = io.Discard
	}
	h := hub.New(hub.Params{Config: cfg, Log: logsink.New(logw, "bench", logsink.LevelWarning)})
	if err := h.Start(ctx); err != nil {
		return nil, fmt.Errorf("start embedded hub: %w", err)
	}
	token, err := os.ReadFile(h.AdminTokenPath())
	if err != nil {
		h.Stop()
		return nil, fmt.Errorf("read admin token: %w", err)
	}
	t, err := dialTarget(h.NATSURL(), strings.TrimSpace(string(token)))
	if err != nil {
		h.Stop()
		return nil, err
	}
	t.embedded = true
	t.stop = func() {
		t.admin.Close()
		h.Stop()
		_ = os.RemoveAll(dir)
	}
	return t, nil
}

// embeddedConfig is the hub's configuration as LoadHub builds it from
// these flags.
func embeddedConfig(dir, sync string) (config.Hub, error) {
	fs := pflag.NewFlagSet("bench-hub", pflag.ContinueOnError)
	config.HubFlags(fs)
	err := fs.Parse([]string{"--data-dir", dir, "--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--sync", sync, "--log-level", "warning", "--log-format", "json"})
	if err != nil {
		return config.Hub{}, fmt.Errorf("parse hub flags: %w", err)
	}
	cfg, err := config.LoadHub(fs)
	if err != nil {
		return config.Hub{}, fmt.Errorf("load hub config: %w", err)
	}
	cfg.Agents.RequestRate = 0
	return cfg, nil
}

// remoteTarget is a running hub.
func remoteTarget(url, token string) (*target, error) {
	t, err := dialTarget(url, token)
	if err != nil {
		return nil, err
	}
	t.stop = t.admin.Close
	return t, nil
}

func dialTarget(url, token string) (*target, error) {
	admin, err := client.Dial(config.Client{Hub: url, Token: token})
	if err != nil {
		return nil, fmt.Errorf("dial hub: %w", err)
	}
	return &target{url: url, token: token, admin: admin}, nil
}

// stats are the hub's task counts.
func (t *target) stats(ctx context.Context) (projections.Stats, error) {
	var st projections.Stats
	if err := t.admin.Do(ctx, ops.OpTaskStats, nil, &st); err != nil {
		return st, fmt.Errorf("read task stats: %w", err)
	}
	return st, nil
}

// agentToken creates (or replaces) an agent's token.
func (t *target) agentToken(ctx context.Context, id string) (string, error) {
	var out ops.TokenCreated
	if err := t.admin.Do(ctx, ops.OpTokenCreate, ops.TokenRequest{AgentID: id}, &out); err != nil {
		return "", fmt.Errorf("create token of %s: %w", id, err)
	}
	return out.Token, nil
}

// revoke deletes an agent's token (on a running hub, so that a bench
// leaves no working tokens behind).
func (t *target) revoke(ctx context.Context, id string) error {
	if err := t.admin.Do(ctx, ops.OpTokenRevoke, ops.TokenRequest{AgentID: id}, nil); err != nil {
		return fmt.Errorf("revoke token of %s: %w", id, err)
	}
	return nil
}
