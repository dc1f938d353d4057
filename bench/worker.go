package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol"
)

// requestTimeout bounds each agent request, as the sidecar's does.
const requestTimeout = 10 * time.Second

// worker is one in-process agent on its own NATS connection, speaking the
// agent protocol (docs/protocol.md, Agents): hello with a session, then
// for each task push accept and complete at once. It works on up to
// slots tasks at a time and declines a push beyond them as busy. With
// batch it asks for several assignments per push and implied acceptance,
// and reports its completes several at a time (verb report): whatever
// finished while the last report was on its way goes in the next.
type worker struct {
	id, session string
	slots       int
	batch       bool
	nc          *nats.Conn
	tr          *tracker
	done        chan protocol.Report // finished tasks waiting for the reporter

	mu   sync.Mutex
	held map[string]protocol.Holding // the tasks at work, by id
	work sync.WaitGroup
	quit chan struct{}
	beat sync.WaitGroup
}

// dialWorker creates the agent's token, connects and takes its pushes;
// it gets no work until hello.
func dialWorker(ctx context.Context, t *target, id string, slots int, batch bool, tr *tracker) (*worker, error) {
	token, err := t.agentToken(ctx, id)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(t.url, nats.Token(token), nats.Name("agentcom-bench-"+id),
		nats.CustomInboxPrefix(broker.AgentInbox(id)), nats.NoReconnect(), nats.Timeout(requestTimeout))
	if err != nil {
		return nil, fmt.Errorf("connect worker %s: %w", id, err)
	}
	w := &worker{id: id, session: "bench-" + nuid.Next(), slots: slots, batch: batch, nc: nc, tr: tr,
		held: map[string]protocol.Holding{}, quit: make(chan struct{}), done: make(chan protocol.Report, slots)}
	if _, err := nc.Subscribe(fmt.Sprintf(broker.PushAllT, id), w.onPush); err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe worker %s to its pushes: %w", id, err)
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("flush worker %s: %w", id, err)
	}
	return w, nil
}

// hello says hello and keeps the session alive with heartbeats at the
// interval the hub asks for.
func (w *worker) hello(ctx context.Context) error {
	var reply protocol.HelloReply
	body := protocol.Hello{Name: w.id, Capabilities: []string{}, Session: w.session, MaxTasks: w.slots,
		Batch: w.batch, ImpliedAccept: w.batch}
	if err := w.request(ctx, broker.VerbHello, body, &reply); err != nil {
		return err
	}
	if w.batch {
		w.beat.Add(1)
		go w.reporter()
	}
	if reply.HeartbeatIntervalMS > 0 {
		w.beat.Add(1)
		go w.heartbeat(time.Duration(reply.HeartbeatIntervalMS) * time.Millisecond)
	}
	return nil
}

func (w *worker) heartbeat(every time.Duration) {
	defer w.beat.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-w.quit:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			_ = w.request(ctx, broker.VerbHeartbeat, protocol.Heartbeat{Session: w.session}, nil)
			cancel()
		}
	}
}

// onPush takes a push (on the connection's delivery goroutine): a task is
// noted and worked on in a goroutine of its own, or declined when every
// slot is taken; an abort is counted (the work is done at once anyway).
func (w *worker) onPush(m *nats.Msg) {
	switch m.Subject {
	case broker.Push(w.id, broker.PushTask):
		var as protocol.Assignment
		if err := json.Unmarshal(m.Data, &as); err != nil {
			w.tr.fail(fmt.Errorf("decode push to %s: %w", w.id, err))
			return
		}
		w.tr.assign(as.TaskID, time.Now())
		w.take(as)
	case broker.Push(w.id, broker.PushTasks):
		var push protocol.Assignments
		if err := json.Unmarshal(m.Data, &push); err != nil {
			w.tr.fail(fmt.Errorf("decode push to %s: %w", w.id, err))
			return
		}
		now := time.Now()
		for _, as := range push.Tasks {
			w.tr.assign(as.TaskID, now)
			w.take(as)
		}
	case broker.Push(w.id, broker.PushAbort):
		w.tr.count(&w.tr.aborts)
	}
}

// take starts the work on an assignment, or declines it when busy.
func (w *worker) take(as protocol.Assignment) {
	ref := protocol.Holding{TaskID: as.TaskID, Generation: as.Generation, Status: "assigned"}
	w.mu.Lock()
	h, ok := w.held[as.TaskID]
	repeat := ok && h.Generation >= as.Generation // a newer generation replaces it
	busy := !ok && len(w.held) >= w.slots
	var holding []protocol.Holding
	if busy {
		for _, h := range w.held {
			holding = append(holding, h)
		}
	} else {
		w.held[as.TaskID] = ref
	}
	w.mu.Unlock()
	if repeat {
		return
	}
	w.work.Add(1)
	go func() {
		defer w.work.Done()
		if busy {
			w.decline(as, holding)
			return
		}
		w.run(as)
	}()
}

func (w *worker) decline(as protocol.Assignment, holding []protocol.Holding) {
	w.tr.count(&w.tr.declines)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	body := protocol.Decline{TaskID: as.TaskID, Generation: as.Generation, Reason: protocol.DeclineBusy, Holding: holding}
	_ = w.request(ctx, broker.VerbDecline, body, nil)
}

// run accepts and completes a task. The work (none) is finished once it
// is accepted, so the task gives up its slot before the complete is sent,
// as the sidecar's does: the hub may push the next task before it
// answers the complete. A refusal (the hub took the task back) drops the
// task; no answer at all ends the run.
func (w *worker) run(as protocol.Assignment) {
	if w.batch { // accepted when assigned; the reporter completes it
		w.release(protocol.TaskRef{TaskID: as.TaskID, Generation: as.Generation})
		w.done <- protocol.Report{Verb: broker.VerbComplete, TaskID: as.TaskID, Generation: as.Generation,
			Result: json.RawMessage(`"ok"`)}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*requestTimeout)
	defer cancel()
	ref := protocol.TaskRef{TaskID: as.TaskID, Generation: as.Generation}
	done := protocol.Complete{TaskID: as.TaskID, Generation: as.Generation, Result: json.RawMessage(`"ok"`)}
	err := w.request(ctx, broker.VerbAccept, ref, nil)
	w.release(ref)
	if err == nil {
		err = w.request(ctx, broker.VerbComplete, done, nil)
	}
	var refused *refusal
	switch {
	case err == nil:
		w.tr.complete(as.TaskID)
	case errors.As(err, &refused):
		w.tr.count(&w.tr.dropped)
	default:
		w.tr.fail(err)
	}
}

// reporter sends the completes of finished tasks in batches until quit:
// one request at a time, carrying every complete that waits.
func (w *worker) reporter() {
	defer w.beat.Done()
	for {
		var batch []protocol.Report
		select {
		case <-w.quit:
			w.flush()
			return
		case r := <-w.done:
			batch = append(batch, r)
		}
		for more := true; more && len(batch) < protocol.MaxReports; {
			select {
			case r := <-w.done:
				batch = append(batch, r)
			default:
				more = false
			}
		}
		w.sendReports(batch)
	}
}

// flush sends what still waits, at the stop.
func (w *worker) flush() {
	var batch []protocol.Report
	for {
		select {
		case r := <-w.done:
			batch = append(batch, r)
		default:
			if len(batch) > 0 {
				w.sendReports(batch)
			}
			return
		}
	}
}

// sendReports sends one batch and counts each outcome.
func (w *worker) sendReports(batch []protocol.Report) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*requestTimeout)
	defer cancel()
	var reply protocol.ReportsReply
	if err := w.request(ctx, broker.VerbReport, protocol.Reports{Reports: batch}, &reply); err != nil {
		w.tr.fail(err)
		return
	}
	for _, res := range reply.Results {
		if res.Status == 200 {
			w.tr.complete(res.TaskID)
		} else {
			w.tr.count(&w.tr.dropped)
		}
	}
}

// release frees a task's slot, unless a newer generation took it.
func (w *worker) release(ref protocol.TaskRef) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h, ok := w.held[ref.TaskID]; ok && h.Generation == ref.Generation {
		delete(w.held, ref.TaskID)
	}
}

// stop ends the heartbeats, waits for the work in flight, says bye and
// closes the connection.
func (w *worker) stop() {
	w.work.Wait() // every finished task is handed to the reporter first
	close(w.quit)
	w.beat.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = w.request(ctx, broker.VerbBye, protocol.Heartbeat{Session: w.session}, nil)
	w.nc.Close()
}

// request sends one agent request and decodes a 2xx answer into out (nil:
// ignored). 429 and 503 are tried again after a short wait; any other
// non-2xx is a *refusal.
func (w *worker) request(ctx context.Context, verb string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode %s: %w", verb, err)
	}
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		status, resp, err := w.send(ctx, verb, data)
		if err != nil {
			return err
		}
		switch {
		case status >= 200 && status < 300:
			return decodeInto(verb, resp, out)
		case status != 429 && status != 503:
			return &refusal{verb: verb, status: status, body: string(resp)}
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("%s by %s: %w", verb, w.id, ctx.Err())
		}
	}
}

func (w *worker) send(ctx context.Context, verb string, data []byte) (int, []byte, error) {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := w.nc.RequestWithContext(rctx, broker.AgentRequest(w.id, verb), data)
	if err != nil {
		return 0, nil, fmt.Errorf("%s by %s: %w", verb, w.id, err)
	}
	status, _ := strconv.Atoi(resp.Header.Get(protocol.HeaderStatus))
	return status, resp.Data, nil
}

func decodeInto(verb string, data []byte, out any) error {
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode %s answer: %w", verb, err)
	}
	return nil
}

// refusal is a non-2xx answer to an agent request.
type refusal struct {
	verb   string
	status int
	body   string
}

func (r *refusal) Error() string { return fmt.Sprintf("%s refused: %d %s", r.verb, r.status, r.body) }
