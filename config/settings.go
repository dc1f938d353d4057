package config

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentcom/agentcom/domain"
)

// Setting is a key an operator may change while the hub runs
// (docs/protocol.md, run-time settings): its value in the text form
// the configuration file takes, how to read it from a Hub and to set it.
type Setting struct {
	Key     string
	Summary string
	get     func(*Hub) string
	set     func(*Hub, string) error
}

// Settings are the keys that change at run time, in the order they are listed.
var Settings = []Setting{
	durationSetting("agents.heartbeat_interval", "how often sidecars heartbeat; each learns a change at its next heartbeat",
		func(h *Hub) *time.Duration { return &h.Agents.HeartbeatInterval }),
	durationSetting("agents.reap_after", "an agent silent this long is evicted; longer than the heartbeat interval",
		func(h *Hub) *time.Duration { return &h.Agents.ReapAfter }),
	durationSetting("agents.reconnect_grace", "how long a task waits for its agent to come back after a disconnect",
		func(h *Hub) *time.Duration { return &h.Agents.ReconnectGrace }),
	durationSetting("agents.acceptance_timeout", "how long an agent has to accept an assignment",
		func(h *Hub) *time.Duration { return &h.Agents.AcceptanceTimeout }),
	durationSetting("agents.stuck_threshold", "how long a working task may go without progress before it is taken back",
		func(h *Hub) *time.Duration { return &h.Agents.StuckThreshold }),
	{Key: "agents.daily_budget_usd", Summary: "no task is assigned to an agent whose day (UTC) cost this much; 0: no budget",
		get: func(h *Hub) string { return strconv.FormatFloat(h.Agents.DailyBudgetUSD, 'f', -1, 64) },
		set: func(h *Hub, v string) error {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return fmt.Errorf("agents.daily_budget_usd: %q is not a number such as 2.5", v)
			}
			h.Agents.DailyBudgetUSD = f
			return nil
		}},
	durationSetting("alerts.check_interval", "how often the alert rules are evaluated",
		func(h *Hub) *time.Duration { return &h.Alerts.CheckInterval }),
	intSetting("alerts.queue_growing_checks", "queue_growing fires after the queue grew at this many checks in a row",
		func(h *Hub) *int { return &h.Alerts.QueueGrowingChecks }),
	floatSetting("alerts.failure_rate_pct", "high_failure_rate fires past this share (%) of failed attempts in 5 minutes",
		func(h *Hub) *float64 { return &h.Alerts.FailureRatePct }),
	intSetting("alerts.failure_min_attempts", "high_failure_rate needs at least this many ended attempts in 5 minutes",
		func(h *Hub) *int { return &h.Alerts.FailureMinAttempts }),
	durationSetting("alerts.stuck_after", "stuck_tasks fires for an assigned or working task with no event this long",
		func(h *Hub) *time.Duration { return &h.Alerts.StuckAfter }),
	intSetting("alerts.error_lines_per_hour", "high_error_rate fires past this many error log lines in an hour",
		func(h *Hub) *int { return &h.Alerts.ErrorLinesPerHour }),
	durationSetting("alerts.cooldown", "the least time between two firings of one warning rule",
		func(h *Hub) *time.Duration { return &h.Alerts.Cooldown }),
	{Key: "agents.default_repo", Summary: "the repository onboarding hands to new agents; empty: none",
		get: func(h *Hub) string { return h.Agents.DefaultRepo },
		set: func(h *Hub, v string) error { h.Agents.DefaultRepo = strings.TrimSpace(v); return nil }},
}

func intSetting(key, summary string, field func(*Hub) *int) Setting {
	return Setting{Key: key, Summary: summary,
		get: func(h *Hub) string { return strconv.Itoa(*field(h)) },
		set: func(h *Hub, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%s: %q is not a whole number such as 3", key, v)
			}
			*field(h) = n
			return nil
		}}
}

func floatSetting(key, summary string, field func(*Hub) *float64) Setting {
	return Setting{Key: key, Summary: summary,
		get: func(h *Hub) string { return strconv.FormatFloat(*field(h), 'f', -1, 64) },
		set: func(h *Hub, v string) error {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return fmt.Errorf("%s: %q is not a number such as 2.5", key, v)
			}
			*field(h) = f
			return nil
		}}
}

func durationSetting(key, summary string, field func(*Hub) *time.Duration) Setting {
	return Setting{Key: key, Summary: summary,
		get: func(h *Hub) string { return FormatDuration(*field(h)) },
		set: func(h *Hub, v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%s: %q is not a duration such as 45s or 10m", key, v)
			}
			*field(h) = d
			return nil
		}}
}

// BudgetPrefix precedes an agent's id in the key of its own daily budget:
// agents.budgets.<agent id>, as in the configuration file.
const BudgetPrefix = "agents.budgets."

// SettingKeys are the keys of Settings, and the form of an agent's budget.
func SettingKeys() []string {
	keys := make([]string, 0, len(Settings)+1)
	for _, s := range Settings {
		keys = append(keys, s.Key)
	}
	return append(keys, BudgetPrefix+"<agent_id>")
}

// FindSetting returns the setting of key: one of Settings, or an agent's
// own budget.
func FindSetting(key string) (Setting, bool) {
	if i := slices.IndexFunc(Settings, func(s Setting) bool { return s.Key == key }); i >= 0 {
		return Settings[i], true
	}
	agent, ok := strings.CutPrefix(key, BudgetPrefix)
	if !ok || domain.CheckAgentID(agent) != nil {
		return Setting{}, false
	}
	return budgetSetting(agent), true
}

// BudgetSettings are the agents' own budgets that h or file sets, in order.
func BudgetSettings(h, file Hub) []Setting {
	ids := slices.Collect(maps.Keys(h.Agents.Budgets))
	ids = append(ids, slices.Collect(maps.Keys(file.Agents.Budgets))...)
	slices.Sort(ids)
	out := []Setting{}
	for _, id := range slices.Compact(ids) {
		out = append(out, budgetSetting(id))
	}
	return out
}

// budgetSetting is agent's own daily budget; "" means it has none, and
// the default applies.
func budgetSetting(agent string) Setting {
	key := BudgetPrefix + agent
	return Setting{Key: key, Summary: "agent " + agent + "'s own daily budget in USD, over agents.daily_budget_usd; empty: the default",
		get: func(h *Hub) string {
			b, ok := h.Agents.Budgets[agent]
			if !ok {
				return ""
			}
			return strconv.FormatFloat(b, 'f', -1, 64)
		},
		set: func(h *Hub, v string) error {
			budgets := maps.Clone(h.Agents.Budgets) // h is a copy; its map is shared
			if budgets == nil {
				budgets = map[string]float64{}
			}
			defer func() { h.Agents.Budgets = budgets }()
			if strings.TrimSpace(v) == "" {
				delete(budgets, agent)
				return nil
			}
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return fmt.Errorf("%s: %q is not a number such as 2.5 (empty: the default)", key, v)
			}
			budgets[agent] = f
			return nil
		}}
}

// Get returns the setting's value in h.
func (s Setting) Get(h Hub) string { return s.get(&h) }

// Apply returns h with the setting at value, checked as the configuration
// file's value would be; the error names the key and what is wrong.
func (s Setting) Apply(h Hub, value string) (Hub, error) {
	h, err := s.Parse(h, value)
	if err != nil {
		return h, err
	}
	return h, CheckSettings(h)
}

// Parse returns h with the setting at value, checked alone: CheckSettings
// checks the settings together.
func (s Setting) Parse(h Hub, value string) (Hub, error) {
	err := s.set(&h, value)
	return h, err
}

// CheckSettings checks the keys settings change, together (a reap_after
// longer than the heartbeat interval, say).
func CheckSettings(h Hub) error { return errors.Join(h.Agents.validate(), h.Alerts.validate()) }

// FormatDuration writes d as a file would: 10m, not 10m0s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// scpLike is git's user@host:path form of a repository address.
var scpLike = regexp.MustCompile(`^[\w.-]+@[\w.-]+:[^\s]+$`)

// checkRepo accepts an empty repository, a URL with a scheme and a host
// (or a file URL), or git's user@host:path form.
func checkRepo(repo string) error {
	if repo == "" || scpLike.MatchString(repo) {
		return nil
	}
	u, err := url.Parse(repo)
	if err == nil && !strings.ContainsAny(repo, " \t\n") &&
		((u.Scheme != "" && u.Host != "") || (u.Scheme == "file" && u.Path != "")) {
		return nil
	}
	return fmt.Errorf("agents.default_repo: %q is not a repository address such as "+
		"https://github.com/org/repo.git or git@github.com:org/repo.git", repo)
}
