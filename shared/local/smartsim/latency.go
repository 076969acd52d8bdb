package smartsim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// DefaultRejectedLatency is how long a refused request (401, 429) takes when
// latency is on and Latency.Rejected is zero. Smartsheet refuses quickly, so
// a refusal costs a small fixed delay, not Base.
const DefaultRejectedLatency = 20 * time.Millisecond

// Latency is the simulated response time of the /2.0 API, in wall-clock time
// (SetClock and AdvanceClock do not affect it). A request that is served, by
// its handler or by an injected fault, takes Base plus PerRow for each row it
// carries: the rows of a GET sheet page, of an add or update request, the rows
// deleted, the one row of GET row. A request refused before it is served (no
// or bad token, rate limit) takes Rejected. Each delay is scaled by a factor
// drawn uniformly from [1-Jitter, 1+Jitter] (deterministic given the seed).
//
// The delay runs after the handler, outside the state lock, before the
// answer is written: concurrent requests overlap, and a write is visible to
// other clients before its own answer arrives, as on the real service. When
// the client goes away the request stops waiting and nothing is written.
//
// The zero value adds no delay.
type Latency struct {
	// Base is the delay of every served request.
	Base time.Duration
	// PerRow is added for each row the request carries.
	PerRow time.Duration
	// Jitter is the spread of each delay as a fraction of it, in [0, 1].
	Jitter float64
	// Rejected is the delay of a refused request (zero: DefaultRejectedLatency
	// when Base or PerRow is set, else none; negative: none).
	Rejected time.Duration
}

// normalized clamps negative durations to zero and Jitter to [0, 1].
func (l Latency) normalized() Latency {
	l.Base, l.PerRow = max(l.Base, 0), max(l.PerRow, 0)
	l.Jitter = min(max(l.Jitter, 0), 1)
	return l
}

// served is the delay of a served request carrying rows rows, before jitter.
func (l Latency) served(rows int) time.Duration {
	return l.Base + time.Duration(rows)*l.PerRow
}

// rejected is the delay of a refused request, before jitter.
func (l Latency) rejected() time.Duration {
	switch {
	case l.Rejected < 0:
		return 0
	case l.Rejected > 0:
		return l.Rejected
	case l.Base > 0 || l.PerRow > 0:
		return DefaultRejectedLatency
	}
	return 0
}

// latencyModel draws the delay of each request.
type latencyModel struct {
	mu   sync.Mutex
	l    Latency
	seed uint64
	rng  *rand.Rand
}

func newLatencyModel(l Latency, seed uint64) *latencyModel {
	m := &latencyModel{seed: seed}
	m.set(l)
	return m
}

// set replaces the latency and reseeds the jitter source.
func (m *latencyModel) set(l Latency) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.l = l.normalized()
	m.rng = rand.New(rand.NewPCG(m.seed, m.seed^0x1a7e9c))
}

func (m *latencyModel) get() Latency {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.l
}

// delay returns the jittered delay of a request: served with rows rows, or refused.
func (m *latencyModel) delay(rows int, refused bool) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.l.served(rows)
	if refused {
		d = m.l.rejected()
	}
	if d <= 0 || m.l.Jitter == 0 {
		return d
	}
	j := m.l.Jitter
	return time.Duration(float64(d) * (1 - j + 2*j*m.rng.Float64()))
}

// wait sleeps for d. It returns false, early, when the client goes away (the
// answer is then not written); when the server closes it stops sleeping and
// returns true, so the answer goes out during shutdown.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return true
	case <-r.Context().Done():
		return false
	}
}

// refuse answers a request refused before it is served, after the refusal latency.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, e *apiError) {
	if s.wait(r, s.latency.delay(0, true)) {
		s.writeError(w, e)
	}
}

// SetLatency replaces the latency model (and reseeds its jitter).
func (s *Server) SetLatency(l Latency) { s.latency.set(l) }

// CurrentLatency returns the latency in force.
func (s *Server) CurrentLatency() Latency { return s.latency.get() }

// latencyJSON is Latency on the admin API, with Go duration strings.
type latencyJSON struct {
	Base     json.RawMessage `json:"base,omitempty"`
	PerRow   json.RawMessage `json:"perRow,omitempty"`
	Jitter   float64         `json:"jitter,omitempty"`
	Rejected json.RawMessage `json:"rejected,omitempty"`
}

// MarshalJSON writes the durations as Go duration strings ("400ms").
func (l Latency) MarshalJSON() ([]byte, error) {
	str := func(d time.Duration) json.RawMessage {
		b, _ := json.Marshal(d.String())
		return b
	}
	return json.Marshal(latencyJSON{Base: str(l.Base), PerRow: str(l.PerRow), Jitter: l.Jitter, Rejected: str(l.Rejected)})
}

// UnmarshalJSON reads the durations as Go duration strings or nanoseconds.
func (l *Latency) UnmarshalJSON(data []byte) error {
	var aux latencyJSON
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	out := Latency{Jitter: aux.Jitter}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *time.Duration
	}{{"base", aux.Base, &out.Base}, {"perRow", aux.PerRow, &out.PerRow}, {"rejected", aux.Rejected, &out.Rejected}} {
		d, err := parseDuration(f.raw)
		if err != nil {
			return fmt.Errorf("latency %s: %w", f.name, err)
		}
		*f.dst = d
	}
	*l = out
	return nil
}

// parseDuration reads a JSON duration: a Go duration string ("2s") or
// nanoseconds; empty is zero.
func parseDuration(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 {
		return 0, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return time.ParseDuration(s)
	}
	var d time.Duration
	err := json.Unmarshal(raw, &d)
	return d, err
}
