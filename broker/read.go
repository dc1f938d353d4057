package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentcom/agentcom/domain"
)

// DefaultReadStall is how long Read waits for the next event before it
// stops and reports the events not delivered: a healthy store delivers
// the next one within milliseconds, a damaged one may never.
const DefaultReadStall = 3 * time.Second

// ReadOpts selects the events Read delivers.
type ReadOpts struct {
	// From is the first stream sequence to read; 0 and 1 both mean the start.
	From uint64
	// Until is the last sequence to read; 0 means the stream's last
	// sequence when Read starts.
	Until uint64
	// Subject filters events (for example one task's subject); "" reads all.
	Subject string
	// Stall bounds the wait for each next event; 0 means DefaultReadStall.
	Stall time.Duration
}

// ErrStop, returned by a Read callback, ends the read without an error.
var ErrStop = errors.New("stop reading")

// ErrLoss means the store holds fewer events than it reports: sequences
// it counts (not deleted) cannot be read, as after damage inside a block.
var ErrLoss = errors.New("events missing from the event store")

// SeqRange is a closed range of stream sequences.
type SeqRange struct {
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
}

func (r SeqRange) String() string {
	if r.First == r.Last {
		return fmt.Sprint(r.First)
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// LossError names the sequences a read found missing. Read returns it
// after delivering every event it could. It wraps ErrLoss.
type LossError struct {
	Missing []SeqRange
	// Subject is the read's filter: with one, Missing is the span in which
	// some of its events were not delivered.
	Subject string
}

func (e *LossError) Error() string {
	parts := make([]string, len(e.Missing))
	for i, r := range e.Missing {
		parts[i] = r.String()
	}
	what := "sequences " + strings.Join(parts, ", ")
	if e.Subject != "" {
		what = "events of " + e.Subject + " after sequence " + fmt.Sprint(e.Missing[0].First-1)
	}
	return fmt.Sprintf("%s: %s are counted by the stream but cannot be read (a damaged block?)", ErrLoss, what)
}

func (e *LossError) Unwrap() error { return ErrLoss }

// Lost is the number of sequences in Missing.
func (e *LossError) Lost() uint64 {
	var n uint64
	for _, r := range e.Missing {
		n += r.Last - r.First + 1
	}
	return n
}

// LastSeq returns the sequence of the newest event (0 when there is none).
func (s *EventStore) LastSeq(ctx context.Context) (uint64, error) {
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// Read calls fn for each selected event in stream order, with Seq set.
// It stops at opts.Until (at most the stream's last sequence when Read
// starts), on the first error from fn (returned), or when fn returns
// ErrStop. It always ends: an event that does not come within opts.Stall
// ends the read, and sequences the stream counts but did not deliver are
// a *LossError, returned once everything readable was delivered.
func (s *EventStore) Read(ctx context.Context, opts ReadOpts, fn func(domain.Envelope) error) error {
	skip, err := s.Quarantined(ctx)
	if err != nil {
		return err
	}
	return s.read(ctx, opts, skip, fn)
}

// Quarantined returns the sequences an operator quarantined (agentcom
// store quarantine): events this build cannot read, which every Read
// skips.
func (s *EventStore) Quarantined(ctx context.Context) (map[uint64]bool, error) {
	skip := map[uint64]bool{}
	err := s.read(ctx, ReadOpts{Subject: StoreEvents}, nil, func(env domain.Envelope) error {
		if q, ok := env.Data.(domain.StoreEventQuarantined); ok {
			skip[q.Seq] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read quarantined events: %w", err)
	}
	return skip, nil
}

// Raw returns the subject and stored bytes of the event at seq, whether
// or not this build can decode it.
func (s *EventStore) Raw(ctx context.Context, seq uint64) (string, []byte, error) {
	msg, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		return "", nil, fmt.Errorf("get event %d: %w", seq, err)
	}
	return msg.Subject, msg.Data, nil
}

func (s *EventStore) read(ctx context.Context, opts ReadOpts, skip map[uint64]bool, fn func(domain.Envelope) error) error {
	last, err := s.LastSeq(ctx)
	if err != nil {
		return err
	}
	until := last
	if opts.Until != 0 {
		until = min(opts.Until, last)
	}
	from := max(opts.From, 1)
	if from > until {
		return nil
	}
	cons, err := s.stream.OrderedConsumer(ctx, orderedConfig(from, opts.Subject))
	if err != nil {
		return fmt.Errorf("create event reader: %w", err)
	}
	r := &reader{from: from, until: until, stall: opts.Stall, whole: opts.Subject == "", prev: from - 1, skip: skip}
	if r.stall <= 0 {
		r.stall = DefaultReadStall
	}
	if cons.CachedInfo().NumPending > 0 {
		it, err := cons.Messages(jetstream.PullMaxMessages(1024))
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		err = r.loop(ctx, it, fn)
		it.Stop()
		if err != nil {
			return err
		}
	} else if r.whole {
		r.gap(until + 1)
	}
	return s.verify(ctx, r.gaps, opts.Subject)
}

func orderedConfig(from uint64, subject string) jetstream.OrderedConsumerConfig {
	cfg := jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
	}
	if subject != "" {
		cfg.FilterSubjects = []string{subject}
	}
	return cfg
}

// reader is one Read's progress: the last sequence delivered and the
// sequences skipped on the way.
type reader struct {
	from, until, prev uint64
	stall             time.Duration
	whole             bool // no subject filter: every sequence must come or be deleted
	gaps              []SeqRange
	skip              map[uint64]bool // quarantined: received, not decoded
}

// gap records the sequences between the last delivered and next.
func (r *reader) gap(next uint64) {
	if next > r.prev+1 {
		r.gaps = append(r.gaps, SeqRange{First: r.prev + 1, Last: next - 1})
	}
}

func (r *reader) loop(ctx context.Context, it jetstream.MessagesContext, fn func(domain.Envelope) error) error {
	for {
		msg, err := r.next(ctx, it)
		if errors.Is(err, errStalled) {
			r.gap(r.until + 1) // whether filtered or not, these were promised
			return nil
		} else if err != nil {
			return err
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read event metadata: %w", err)
		}
		seq := meta.Sequence.Stream
		if seq > r.until {
			if r.whole {
				r.gap(r.until + 1)
			}
			return nil
		}
		if r.whole {
			r.gap(seq)
		}
		r.prev = seq
		if !r.skip[seq] {
			if done, err := deliver(msg.Data(), seq, fn); done || err != nil {
				return err
			}
		}
		if seq == r.until || meta.NumPending == 0 {
			if r.whole {
				r.gap(r.until + 1)
			}
			return nil
		}
	}
}

var errStalled = errors.New("read stalled")

// next waits at most r.stall for the next message.
func (r *reader) next(ctx context.Context, it jetstream.MessagesContext) (jetstream.Msg, error) {
	nctx, cancel := context.WithTimeout(ctx, r.stall)
	defer cancel()
	msg, err := it.Next(jetstream.NextContext(nctx))
	if err == nil {
		return msg, nil
	}
	if ctx.Err() == nil && nctx.Err() != nil {
		return nil, errStalled
	}
	return nil, fmt.Errorf("read events: %w", err)
}

// deliver decodes one event and hands it to fn; done means fn asked to stop.
func deliver(data []byte, seq uint64, fn func(domain.Envelope) error) (bool, error) {
	env, err := domain.DecodeEnvelope(data)
	if err != nil {
		return false, fmt.Errorf("read event %d: %w (with the hub stopped, agentcom store quarantine %d skips it)", seq, err, seq)
	}
	env.Seq = seq
	if err := fn(env); errors.Is(err, ErrStop) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	return false, nil
}

// verify keeps the gaps the stream does not report as deleted (rollups
// delete, so do purges; sequences before the first are gone too): those
// are loss.
func (s *EventStore) verify(ctx context.Context, gaps []SeqRange, subject string) error {
	if len(gaps) == 0 {
		return nil
	}
	if subject != "" {
		return &LossError{Missing: gaps, Subject: subject}
	}
	info, err := s.stream.Info(ctx, jetstream.WithDeletedDetails(true))
	if err != nil {
		return fmt.Errorf("check skipped events: %w", err)
	}
	missing := notDeleted(gaps, info.State.FirstSeq, info.State.Deleted)
	if len(missing) == 0 {
		return nil
	}
	return &LossError{Missing: missing}
}

// notDeleted returns the parts of gaps not listed in deleted nor before
// the stream's first sequence.
func notDeleted(gaps []SeqRange, first uint64, deleted []uint64) []SeqRange {
	gone := make(map[uint64]bool, len(deleted))
	for _, d := range deleted {
		gone[d] = true
	}
	var out []SeqRange
	for _, g := range gaps {
		for seq := max(g.First, first); seq <= g.Last; seq++ {
			if gone[seq] {
				continue
			}
			if n := len(out); n > 0 && out[n-1].Last == seq-1 {
				out[n-1].Last = seq
			} else {
				out = append(out, SeqRange{First: seq, Last: seq})
			}
		}
	}
	return out
}
