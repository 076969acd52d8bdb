package smartsim

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Endpoint keys name API operations for counters, faults and rate limits.
const (
	EndpointListSheets          = "listSheets"
	EndpointGetSheet            = "getSheet"
	EndpointGetSheetVersion     = "getSheetVersion"
	EndpointCreateSheet         = "createSheet"
	EndpointCreateSheetInFolder = "createSheetInFolder"
	EndpointCreateSheetInWS     = "createSheetInWorkspace"
	EndpointListColumns         = "listColumns"
	EndpointAddColumns          = "addColumns"
	EndpointUpdateColumn        = "updateColumn"
	EndpointGetSheetSummary     = "getSheetSummary"
	EndpointListSummaryFields   = "listSummaryFields"
	EndpointAddSummaryFields    = "addSummaryFields"
	EndpointUpdateSummaryFields = "updateSummaryFields"
	EndpointAddRows             = "addRows"
	EndpointUpdateRows          = "updateRows"
	EndpointDeleteRows          = "deleteRows"
	EndpointGetRow              = "getRow"
	EndpointCellHistory         = "cellHistory"
	EndpointAttachFile          = "attachFile"
	EndpointAttachFileToRow     = "attachFileToRow"
	EndpointListAttachments     = "listAttachments"
	EndpointListRowAttachments  = "listRowAttachments"
	EndpointGetAttachment       = "getAttachment"
	EndpointAttachNewVersion    = "attachNewVersion"
	EndpointListVersions        = "listAttachmentVersions"
	EndpointGetFolder           = "getFolder"
	EndpointListWorkspaces      = "listWorkspaces"
	EndpointGetWorkspace        = "getWorkspace"
	EndpointCreateWebhook       = "createWebhook"
	EndpointListWebhooks        = "listWebhooks"
	EndpointGetWebhook          = "getWebhook"
	EndpointUpdateWebhook       = "updateWebhook"
	EndpointDeleteWebhook       = "deleteWebhook"
	EndpointResetSharedSecret   = "resetSharedSecret"
	EndpointGetCurrentUser      = "getCurrentUser"
	EndpointServerInfo          = "serverInfo"
	// EndpointAll configures a fault for every endpoint without its own.
	EndpointAll = "*"
)

// FaultKind is an injected failure.
type FaultKind string

// The injectable failures.
const (
	// FaultUnexpected answers 500 with errorCode 4004.
	FaultUnexpected FaultKind = "4004"
	// FaultServerTimeout answers 500 with errorCode 4002.
	FaultServerTimeout FaultKind = "4002"
	// FaultMaintenance answers 503 with errorCode 4001.
	FaultMaintenance FaultKind = "4001"
	// Fault500 answers a bare 500 with a plain-text body.
	Fault500 FaultKind = "500"
	// Fault502 answers a bare 502 Bad Gateway.
	Fault502 FaultKind = "502"
	// Fault503 answers a bare 503 Service Unavailable.
	Fault503 FaultKind = "503"
	// FaultTimeout hangs until the client gives up or the server closes, or
	// for Fault.Delay if set, then answers 4002.
	FaultTimeout FaultKind = "timeout"
	// FaultLostResponse applies the request, then answers a bare 502: the
	// response was lost on the way back, so a retried write is applied twice.
	FaultLostResponse FaultKind = "lost-response"
	// FaultRateLimited answers 429 with errorCode 4003, as Smartsheet does
	// when a token's rate limit is exceeded, without counting the call
	// against the simulator's own limits.
	FaultRateLimited FaultKind = "429"
)

// AllFaultKinds lists every injectable failure, for a mix (see Fault.Kinds).
func AllFaultKinds() []FaultKind {
	return []FaultKind{FaultRateLimited, FaultUnexpected, FaultServerTimeout, FaultMaintenance, Fault500, Fault502, Fault503, FaultTimeout, FaultLostResponse}
}

// Fault configures failures of one endpoint: first the next Next calls fail,
// then each call fails with probability Rate (deterministic given the seed).
// A failing call fails with Kind, or, when Kinds is set, with one of Kinds
// drawn at random (a chaos mix); Delay is the hang of FaultTimeout.
type Fault struct {
	Kind  FaultKind     `json:"kind"`
	Kinds []FaultKind   `json:"kinds,omitempty"`
	Rate  float64       `json:"rate,omitempty"`
	Next  int           `json:"next,omitempty"`
	Delay time.Duration `json:"delay,omitempty"`
}

// Counter counts the calls of one endpoint.
type Counter struct {
	Calls       int64 `json:"calls"`
	Faults      int64 `json:"faults"`
	RateLimited int64 `json:"rateLimited"`
}

type faults struct {
	mu       sync.Mutex
	rng      *rand.Rand
	seed     uint64
	rules    map[string]*Fault
	counters map[string]*Counter
	byKind   map[FaultKind]int64
}

func newFaults(seed uint64) *faults {
	return &faults{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), seed: seed, rules: map[string]*Fault{}, counters: map[string]*Counter{}, byKind: map[FaultKind]int64{}}
}

func (f *faults) counter(key string) *Counter {
	c := f.counters[key]
	if c == nil {
		c = &Counter{}
		f.counters[key] = c
	}
	return c
}

func (f *faults) count(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counter(key).Calls++
}

func (f *faults) countLimited(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counter(key).RateLimited++
}

// decide returns the fault to inject into this call, if any.
func (f *faults) decide(key string) (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rule := f.rules[key]
	if rule == nil {
		rule = f.rules[EndpointAll]
	}
	if rule == nil {
		return Fault{}, false
	}
	hit := false
	if rule.Next > 0 {
		rule.Next--
		hit = true
	} else if rule.Rate > 0 {
		hit = f.rng.Float64() < rule.Rate
	}
	out := *rule
	if hit {
		if len(rule.Kinds) > 0 {
			out.Kind = rule.Kinds[f.rng.IntN(len(rule.Kinds))]
		}
		f.counter(key).Faults++
		f.byKind[out.Kind]++
	}
	return out, hit
}

// SetFault configures the faults of an endpoint key (or EndpointAll),
// replacing any earlier rule for it. A zero Fault removes the rule.
func (s *Server) SetFault(endpoint string, f Fault) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	if f.Kind == "" && len(f.Kinds) > 0 {
		f.Kind = f.Kinds[0]
	}
	if f.Kind == "" || (f.Next <= 0 && f.Rate <= 0) {
		delete(s.faults.rules, endpoint)
		return
	}
	s.faults.rules[endpoint] = &f
}

// FailNext makes the next n calls of an endpoint fail with kind.
func (s *Server) FailNext(endpoint string, n int, kind FaultKind) {
	s.SetFault(endpoint, Fault{Kind: kind, Next: n})
}

// FaultRate makes every endpoint fail with probability p, each failure one
// of kinds (none: AllFaultKinds) drawn at random, deterministic given the
// server's Seed: the chaos mode of a soak. p 0 removes the rule.
func (s *Server) FaultRate(p float64, kinds ...FaultKind) {
	if len(kinds) == 0 {
		kinds = AllFaultKinds()
	}
	s.SetFault(EndpointAll, Fault{Kinds: kinds, Rate: p})
}

// FaultCounts returns how many calls failed with each kind of fault.
func (s *Server) FaultCounts() map[FaultKind]int64 {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := make(map[FaultKind]int64, len(s.faults.byKind))
	for k, v := range s.faults.byKind {
		out[k] = v
	}
	return out
}

// ClearFaults removes every fault rule and reseeds the fault generator.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.rules = map[string]*Fault{}
	s.faults.rng = rand.New(rand.NewPCG(s.faults.seed, s.faults.seed^0x5eed))
}

// Faults returns the fault rules in force.
func (s *Server) Faults() map[string]Fault {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := map[string]Fault{}
	for k, v := range s.faults.rules {
		out[k] = *v
	}
	return out
}

// Counters returns a copy of the per-endpoint call counters.
func (s *Server) Counters() map[string]Counter {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := make(map[string]Counter, len(s.faults.counters))
	for k, v := range s.faults.counters {
		out[k] = *v
	}
	return out
}

// Counter returns the counter of one endpoint key.
func (s *Server) Counter(endpoint string) Counter { return s.Counters()[endpoint] }

// ResetCounters sets every counter to zero.
func (s *Server) ResetCounters() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.counters = map[string]*Counter{}
	s.faults.byKind = map[FaultKind]int64{}
}

// endpointKeys lists the keys seen so far, sorted (for the admin API).
func (s *Server) endpointKeys() []string {
	c := s.Counters()
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// injectFault answers the call with the fault decided for it.
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	plain := func(status int) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(http.StatusText(status) + "\n"))
	}
	switch f.Kind {
	case FaultUnexpected:
		s.writeError(w, &apiError{status: 500, code: 4004, msg: "An unexpected error has occurred. Please retry your request. If you encounter this error repeatedly, please contact Support for assistance."})
	case FaultServerTimeout:
		s.writeError(w, &apiError{status: 500, code: 4002, msg: "Server timeout exceeded. Request has failed."})
	case FaultMaintenance:
		s.writeError(w, &apiError{status: 503, code: 4001, msg: "Smartsheet.com is currently offline for system maintenance. Please check back again shortly."})
	case Fault502, FaultLostResponse:
		plain(http.StatusBadGateway)
	case Fault503:
		plain(http.StatusServiceUnavailable)
	case FaultRateLimited:
		s.writeError(w, errRateLimited())
	case FaultTimeout:
		var after <-chan time.Time
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			defer t.Stop()
			after = t.C
		}
		select {
		case <-r.Context().Done():
			return true
		case <-s.done:
			return true
		case <-after:
			s.writeError(w, &apiError{status: 500, code: 4002, msg: "Server timeout exceeded. Request has failed."})
		}
	default:
		plain(http.StatusInternalServerError)
	}
	return true
}

// MarshalJSON writes Delay as a Go duration string.
func (f Fault) MarshalJSON() ([]byte, error) {
	type plain Fault
	return json.Marshal(struct {
		plain
		Delay string `json:"delay,omitempty"`
	}{plain: plain(f), Delay: durString(f.Delay)})
}

// UnmarshalJSON reads Delay as a Go duration string ("2s") or nanoseconds.
func (f *Fault) UnmarshalJSON(data []byte) error {
	type plain Fault
	var aux struct {
		plain
		Delay json.RawMessage `json:"delay,omitempty"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*f = Fault(aux.plain)
	d, err := parseDuration(aux.Delay)
	if err != nil {
		return err
	}
	f.Delay = d
	return nil
}

func durString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// discardWriter swallows the answer of a request whose response is "lost".
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header {
	if d.h == nil {
		d.h = http.Header{}
	}
	return d.h
}
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
