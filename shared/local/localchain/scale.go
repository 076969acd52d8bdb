package localchain

// What the scale harness (TestScale, `make scale`) adds to the chain: as many sheet workers as the template lets
// Lambda run at once (one emulator each: an emulator serves one invoke at a time), the time of every invocation, and
// counts of the calls the functions make — to DynamoDB through a counting proxy, to Smartsheet through a handler that
// notes when each request arrived.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fieldaudit/billing-audit/shared/local/chaos"
	"github.com/fieldaudit/billing-audit/shared/local/localstack"
	"github.com/fieldaudit/billing-audit/shared/local/rie"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
)

// MaximumConcurrency is the ScalingConfig.MaximumConcurrency of an SQS event of a function in a SAM template: how
// many invocations that mapping runs at once. It is 0 when the event sets none (Lambda then scales on its own).
func MaximumConcurrency(template []byte, function, event string) (int, error) {
	t, err := localstack.ParseTemplate(template)
	if err != nil {
		return 0, err
	}
	path := []string{"Resources", function, "Properties", "Events", event, "Properties", "ScalingConfig", "MaximumConcurrency"}
	var v any = map[string]any(t)
	for i, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return 0, fmt.Errorf("template: %s is not a mapping", strings.Join(path[:i], "."))
		}
		if v, ok = m[k]; !ok {
			if k == "ScalingConfig" || k == "MaximumConcurrency" {
				return 0, nil
			}
			return 0, fmt.Errorf("template: no %s", strings.Join(path[:i+1], "."))
		}
	}
	n, ok := v.(int)
	if !ok || n < 2 {
		return 0, fmt.Errorf("template: %s is %v, want an integer of at least 2 (Lambda's minimum)", strings.Join(path, "."), v)
	}
	return n, nil
}

// StartFunction starts one more execution environment of a chain function: its bootstrap under its own emulator,
// with the chain's environment, timeout and memory. A mapping with MaximumConcurrency n is played by n pollers, each
// invoking its own environment.
func StartFunction(ctx context.Context, o Options, name string) (*rie.Function, error) {
	spec, ok := Functions[name]
	if !ok {
		return nil, fmt.Errorf("start function %q: not one of the chain's functions", name)
	}
	return rie.Start(ctx, rie.Config{Name: name, Bootstrap: filepath.Join(o.Bootstraps, name, "bootstrap"),
		Emulator: o.Emulator, Env: environ(o.Env, nil), Timeout: spec.Timeout, MemoryMB: spec.MemoryMB, Output: o.Output})
}

// DrainConcurrently runs the pollers of one queue at once until the queue holds no message, visible or in flight: a
// poller stops only when no message is left anywhere, so a sheet that another poller's invocation re-queues is still
// picked up. Give each poller its own function, and a visibility timeout longer than the function's timeout (a
// message must not reappear while its invocation runs, as on SQS). It returns the sum of what the polls did.
func DrainConcurrently(ctx context.Context, pollers ...*Poller) (Result, error) {
	var (
		mu    sync.Mutex
		total Result
		errs  []error
		wg    sync.WaitGroup
	)
	for _, p := range pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := p.Drain(ctx)
			mu.Lock()
			defer mu.Unlock()
			total.add(r)
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// Invocation is one timed invoke of a function.
type Invocation struct {
	Function string // its name in Functions
	Start    time.Time
	Took     time.Duration
	Err      error
}

// Share is the invocation's time as a fraction of its function's timeout (Functions), 0 for an unknown function.
func (i Invocation) Share() float64 {
	spec, ok := Functions[i.Function]
	if !ok || spec.Timeout <= 0 {
		return 0
	}
	return i.Took.Seconds() / spec.Timeout.Seconds()
}

// Invocations records the invokes of the functions it times. It is safe for concurrent use.
type Invocations struct {
	mu   sync.Mutex
	list []Invocation
}

// Timed is f as an Invoker whose invokes are recorded under the function's name.
func (r *Invocations) Timed(name string, f Invoker) Invoker {
	return timedInvoker{name: name, f: f, rec: r}
}

// Between returns the invocations that started in [from, to).
func (r *Invocations) Between(from, to time.Time) []Invocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Invocation
	for _, i := range r.list {
		if !i.Start.Before(from) && i.Start.Before(to) {
			out = append(out, i)
		}
	}
	return out
}

// Longest is the invocation with the largest share of its function's timeout (false when there is none).
func Longest(list []Invocation) (Invocation, bool) {
	var best Invocation
	for _, i := range list {
		if i.Share() > best.Share() || best.Function == "" {
			best = i
		}
	}
	return best, best.Function != ""
}

type timedInvoker struct {
	name string
	f    Invoker
	rec  *Invocations
}

func (t timedInvoker) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	start := time.Now()
	out, err := t.f.Invoke(ctx, payload)
	t.rec.mu.Lock()
	t.rec.list = append(t.rec.list, Invocation{Function: t.name, Start: start, Took: time.Since(start), Err: err})
	t.rec.mu.Unlock()
	return out, err
}

// dynamoTarget prefixes the X-Amz-Target header of every DynamoDB API call: DynamoDB_20120810.GetItem.
const dynamoTarget = "DynamoDB_20120810."

// DynamoDBCounter is a reverse proxy in front of a DynamoDB endpoint (DynamoDB Local, moto) that counts the API
// calls through it, by operation. The functions are pointed at it with AWS_ENDPOINT_URL_DYNAMODB, so it counts their
// calls — the SDK's retries included — and no one else's.
type DynamoDBCounter struct {
	srv      *http.Server
	url      string
	proxy    *httputil.ReverseProxy
	serialMu *sync.Mutex // nil: requests are forwarded concurrently
	// faults, when set, answers some requests as DynamoDB does when it
	// throttles, fails, loses an answer or cancels a transaction (Faults).
	faults *chaos.DynamoDBFaults

	mu    sync.Mutex
	calls []dynamoCall // in arrival order
}

// Faults makes the proxy fault rate of the requests, drawn from seed, with
// kinds (all when none), on the wire: the functions' SDK meets DynamoDB's own
// error answers — a 400 ProvisionedThroughputExceededException, a 500
// InternalServerError, a TransactionCanceledException with a reason per item
// — and a lost answer is one the proxy forwarded and then answered 500. Call it
// before the functions start. It returns the faults, for their counts.
func (c *DynamoDBCounter) Faults(rate float64, seed uint64, kinds ...chaos.Kind) *chaos.DynamoDBFaults {
	c.faults = chaos.NewDynamoDBFaults(rate, seed, kinds...)
	return c.faults
}

type dynamoCall struct {
	at    time.Time
	op    string
	kind  string  // the item kind of the key it names first: SHEET, RUN, BUDGET, … ("" when none)
	units float64 // the capacity units it consumed, as the emulator reports them
}

// capacityOps are the operations that report the capacity they consume when asked (ReturnConsumedCapacity).
var capacityOps = map[string]bool{"GetItem": true, "PutItem": true, "UpdateItem": true, "DeleteItem": true, "Query": true,
	"Scan": true, "BatchGetItem": true, "BatchWriteItem": true, "TransactGetItems": true, "TransactWriteItems": true}

type callIndex struct{}

// keyKind finds the first partition key a DynamoDB request names — as a key ("pk") or a key condition's value
// (":pk") — and captures its kind, the part before "#": SHEET for SHEET#<id>, BUDGET, RUN, META, …
var keyKind = regexp.MustCompile(`":?pk":\{"S":"([A-Z_]+)`)

// StartDynamoDBCounter listens on a free loopback port and forwards every request to upstream. With serialize it
// forwards one request at a time: moto's server runs requests on concurrent threads without isolating them (two
// conditional writes of one item can both pass), which concurrent sheet workers would hit; DynamoDB Local needs
// no such help.
func StartDynamoDBCounter(upstream string, serialize bool) (*DynamoDBCounter, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("DynamoDB counter: upstream %q is not a URL", upstream)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("DynamoDB counter: %w", err)
	}
	c := &DynamoDBCounter{url: "http://" + l.Addr().String(), proxy: httputil.NewSingleHostReverseProxy(u)}
	c.proxy.ModifyResponse = c.noteUnits
	if serialize {
		c.serialMu = &sync.Mutex{}
	}
	c.srv = &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.srv.Serve(l) }()
	return c, nil
}

// ServeHTTP counts the call by its X-Amz-Target (other requests under "other") and forwards it.
func (c *DynamoDBCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), dynamoTarget)
	if !ok {
		op = "other"
	}
	at := time.Now()
	kind := ""
	if body, err := io.ReadAll(r.Body); err == nil {
		r.Body.Close()
		if m := keyKind.FindSubmatch(body); m != nil {
			kind = string(m[1])
		}
		if capacityOps[op] && bytes.HasPrefix(body, []byte("{")) && !bytes.Contains(body, []byte(`"ReturnConsumedCapacity"`)) {
			// Ask for the capacity the call consumes (the functions do not): the emulator reports it as DynamoDB
			// would bill it. The answer only gains a field the SDK knows.
			sep := ","
			if bytes.Equal(bytes.TrimSpace(body[1:]), []byte("}")) {
				sep = ""
			}
			body = append([]byte(`{"ReturnConsumedCapacity":"TOTAL"`+sep), body[1:]...)
			r.Header.Del("Content-Length")
		}
		r.ContentLength = int64(len(body))
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	c.mu.Lock()
	c.calls = append(c.calls, dynamoCall{at: at, op: op, kind: kind})
	r = r.WithContext(context.WithValue(r.Context(), callIndex{}, len(c.calls)-1))
	c.mu.Unlock()
	fault := chaos.Kind("")
	if c.faults != nil {
		fault = c.faults.Pick(op)
	}
	switch fault {
	case chaos.Throttled:
		dynamoError(w, http.StatusBadRequest, "ProvisionedThroughputExceededException",
			`"message":"The level of configured provisioned throughput for the table was exceeded."`)
		return
	case chaos.ServerError:
		dynamoError(w, http.StatusInternalServerError, "InternalServerError", `"message":"Internal server error"`)
		return
	case chaos.TransactionConflict:
		dynamoError(w, http.StatusBadRequest, "TransactionCanceledException", conflictReasons(r))
		return
	}
	if c.serialMu != nil {
		c.serialMu.Lock()
		defer c.serialMu.Unlock()
	}
	if fault == chaos.LostResponse {
		c.proxy.ServeHTTP(httptest.NewRecorder(), r) // applied; its answer never arrives
		dynamoError(w, http.StatusInternalServerError, "InternalServerError", `"message":"Internal server error"`)
		return
	}
	c.proxy.ServeHTTP(w, r)
}

// dynamoError answers as DynamoDB's JSON protocol does: the status, and the
// error's type and fields in the body.
func dynamoError(w http.ResponseWriter, status int, typ, fields string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s",%s}`, typ, fields)
}

// conflictReasons are a cancelled transaction's fields: one reason per item
// of the request, TransactionConflict for the first and None for the others.
func conflictReasons(r *http.Request) string {
	var in struct{ TransactItems []json.RawMessage }
	if body, err := io.ReadAll(r.Body); err == nil {
		_ = json.Unmarshal(body, &in)
	}
	codes := make([]string, max(len(in.TransactItems), 1))
	reasons := make([]string, len(codes))
	for i := range codes {
		codes[i], reasons[i] = "None", `{"Code":"None"}`
	}
	codes[0], reasons[0] = "TransactionConflict", `{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}`
	return fmt.Sprintf(`"Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [%s]","CancellationReasons":[%s]`,
		strings.Join(codes, ", "), strings.Join(reasons, ","))
}

// noteUnits adds the capacity units an answer reports to its call.
func (c *DynamoDBCounter) noteUnits(resp *http.Response) error {
	i, ok := resp.Request.Context().Value(callIndex{}).(int)
	if !ok || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return err
	}
	var out struct {
		ConsumedCapacity json.RawMessage
	}
	if json.Unmarshal(body, &out) != nil || len(out.ConsumedCapacity) == 0 {
		return nil
	}
	type consumed struct{ CapacityUnits float64 }
	var one consumed
	var many []consumed
	units := 0.0
	if json.Unmarshal(out.ConsumedCapacity, &one) == nil {
		units = one.CapacityUnits
	} else if json.Unmarshal(out.ConsumedCapacity, &many) == nil {
		for _, m := range many {
			units += m.CapacityUnits
		}
	}
	c.mu.Lock()
	c.calls[i].units = units
	c.mu.Unlock()
	return nil
}

// Units returns the capacity units consumed by the calls that arrived in [from, to): read units (GetItem,
// BatchGetItem, Query, Scan, TransactGetItems) and write units (the others), as on-demand billing counts them.
func (c *DynamoDBCounter) Units(from, to time.Time) (read, write float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, call := range c.calls {
		if call.at.Before(from) || !call.at.Before(to) {
			continue
		}
		if slices.Contains(readOperations, call.op) {
			read += call.units
		} else {
			write += call.units
		}
	}
	return read, write
}

// URL is the proxy's endpoint, for AWS_ENDPOINT_URL_DYNAMODB.
func (c *DynamoDBCounter) URL() string { return c.url }

// Between returns the calls that arrived in [from, to), by operation.
func (c *DynamoDBCounter) Between(from, to time.Time) Counts { return c.OfKind(from, to, "") }

// OfKind returns the calls that arrived in [from, to) whose first key is of the given kind (SHEET: a sheet's state
// or baselines; "": every call), by operation.
func (c *DynamoDBCounter) OfKind(from, to time.Time, kind string) Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := Counts{}
	for _, call := range c.calls {
		if !call.at.Before(from) && call.at.Before(to) && (kind == "" || call.kind == kind) {
			out[call.op]++
		}
	}
	return out
}

// Close stops the proxy.
func (c *DynamoDBCounter) Close() error { return c.srv.Close() }

// Counts are DynamoDB API calls by operation (GetItem, Query, …).
type Counts map[string]int64

// readOperations are the DynamoDB operations that read items.
var readOperations = []string{"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}

// Add is c plus other, operation by operation.
func (c Counts) Add(other Counts) Counts {
	out := Counts{}
	for _, m := range []Counts{c, other} {
		for k, v := range m {
			out[k] += v
		}
	}
	return out
}

// Total is the number of calls.
func (c Counts) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// Reads is the number of calls that read items: GetItem, BatchGetItem, Query, Scan, TransactGetItems.
func (c Counts) Reads() int64 {
	var n int64
	for _, op := range readOperations {
		n += c[op]
	}
	return n
}

// String lists the operations in name order: "GetItem=3 Query=1".
func (c Counts) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, c[k])
	}
	return b.String()
}

// CallLog is an http.Handler in front of another — the Smartsheet simulator's — that notes when each request under
// Prefix arrived, so that the busiest minute can be found exactly (Peak). It is safe for concurrent use.
type CallLog struct {
	Handler http.Handler
	// Prefix selects the requests noted ("/2.0/": the API, not the simulator's admin routes).
	Prefix string

	mu    sync.Mutex
	times []time.Time // in arrival order
	paths []string    // the requests' paths, in the same order
}

// ServeHTTP notes the request's arrival and hands it on.
func (l *CallLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, l.Prefix) {
		l.mu.Lock()
		l.times = append(l.times, time.Now())
		l.paths = append(l.paths, r.URL.Path)
		l.mu.Unlock()
	}
	l.Handler.ServeHTTP(w, r)
}

// Between is the number of requests that arrived in [from, to).
func (l *CallLog) Between(from, to time.Time) int { return l.ToSheets(from, to, nil) }

// ToSheets is the number of requests that arrived in [from, to) about one of the sheets (a path under
// /sheets/<id>); nil sheets: every request.
func (l *CallLog) ToSheets(from, to time.Time, sheets map[int64]bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for i, t := range l.times {
		if !t.Before(from) && t.Before(to) && (sheets == nil || sheets[sheetOfPath(l.paths[i])]) {
			n++
		}
	}
	return n
}

// sheetOfPath is the sheet id of a path under /sheets/<id>, 0 for any other path.
func sheetOfPath(p string) int64 {
	_, rest, ok := strings.Cut(p, "/sheets/")
	if !ok {
		return 0
	}
	rest, _, _ = strings.Cut(rest, "/")
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return 0
	}
	return id
}

// Peak is the most requests that arrived within any window of the given length (a sliding window: every window
// ending at a request is counted).
func (l *CallLog) Peak(window time.Duration) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return smartsim.MaxInWindow(l.times, window)
}
