package config

import (
	"errors"
	"time"

	"github.com/spf13/viper"
)

// Messages bound the messages kept (docs/protocol.md, messages).
type Messages struct {
	// MaxAge and MaxMsgs bound the AGENTCOM_MESSAGES stream: the oldest go
	// first. Default 168h (7 days) and 100,000.
	MaxAge  time.Duration `mapstructure:"max_age"`
	MaxMsgs int64         `mapstructure:"max_msgs"`
	// Mailbox bounds what one inbox read gives an agent: the newest that
	// many unacknowledged. Default 100.
	Mailbox int `mapstructure:"mailbox"`
}

// MessageDefaults are the defaults of the messages keys.
var MessageDefaults = Messages{MaxAge: 168 * time.Hour, MaxMsgs: 100_000, Mailbox: 100}

func setMessageDefaults(v *viper.Viper) {
	v.SetDefault("messages.max_age", MessageDefaults.MaxAge)
	v.SetDefault("messages.max_msgs", MessageDefaults.MaxMsgs)
	v.SetDefault("messages.mailbox", MessageDefaults.Mailbox)
}

func (m Messages) validate() error {
	if m.MaxAge <= 0 || m.MaxMsgs < 1 || m.Mailbox < 1 {
		return errors.New("messages.max_age, messages.max_msgs, messages.mailbox: must be positive (such as 168h, 100000, 100)")
	}
	return nil
}
