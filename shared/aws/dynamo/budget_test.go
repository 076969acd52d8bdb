package dynamo_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// The shared budget under load, end to end: several "processes" (each its
// own smartsheet.Client and its own RateBudget, so its own view of the item)
// hammer the Smartsheet simulator with one token, the simulator enforcing the
// same limits. The limits are scaled down and the simulator's clock runs
// speedUp times faster, so that its sliding minute is window of real time
// and a short run crosses more than one of them; the budget gets the same
// window.
const (
	speedUp     = 8
	window      = time.Minute / speedUp // 7.5 s
	perWindow   = 40                    // C = 4, T = 208 ms
	histPerWin  = 8                     // C = 1, T = 1.07 s
	loadRun     = 12 * time.Second      // 1.6 windows
	loadProcs   = 6                     // the last two call cell history
	histProcs   = 2
	perProcGors = 2 // concurrent calls within each process
	budgetToken = "budget-test-token"
)

// fastClock is a simulator clock running speedUp times faster than time.Now.
func fastClock() func() time.Time {
	base := time.Now()
	return func() time.Time { return base.Add(time.Since(base) * speedUp) }
}

// sent records when each request left a client and what came back.
type sent struct {
	mu                  sync.Mutex
	all, history        []time.Time
	tooMany, answered   int
	next                http.RoundTripper
	onlyStatusOfHistory bool
}

func (s *sent) RoundTrip(r *http.Request) (*http.Response, error) {
	at := time.Now()
	resp, err := s.next.RoundTrip(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, at)
	if strings.HasSuffix(r.URL.Path, "/history") {
		s.history = append(s.history, at)
	}
	if err == nil {
		s.answered++
		if resp.StatusCode == http.StatusTooManyRequests {
			s.tooMany++
		}
	}
	return resp, err
}

// loadSheet is a simulator sheet with one row, whose first cell's history
// the cell-history processes read.
type loadSheet struct {
	sim                *smartsim.Server
	id, row, column    int64
	transport          *sent
	retryBudget        time.Duration
	unexpected         []error
	unexpectedMu       sync.Mutex
	requestsPerProcess []int
}

func mustLoadSheet(tb testing.TB) *loadSheet {
	tb.Helper()
	sim := smartsimtest.Start(tb, smartsim.Options{Clock: fastClock(),
		Limits: smartsim.Limits{PerMinute: perWindow, HistoryPerMinute: histPerWin}})
	sh, err := sim.CreateSheet(smartsheet.Sheet{Name: "Budget load", Columns: []smartsheet.Column{
		{Title: "Name", Type: smartsheet.TypeTextNumber, Primary: true},
	}}, 0, 0, smartsim.Edit{})
	if err != nil {
		tb.Fatalf("CreateSheet() error: %v", err)
	}
	rows, err := sim.AddRows(smartsim.Edit{}, sh.ID, []smartsheet.Row{{Cells: []smartsheet.Cell{
		{ColumnID: sh.Columns[0].ID, Value: smartsheet.StringValue("row")}}}})
	if err != nil {
		tb.Fatalf("AddRows() error: %v", err)
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(base.CloseIdleConnections)
	return &loadSheet{sim: sim, id: sh.ID, row: rows[0].ID, column: sh.Columns[0].ID,
		transport: &sent{next: base}, retryBudget: 30 * time.Second}
}

// run starts loadProcs processes of perProcGors goroutines each, calling
// GET /sheets/{id} (or cell history, for the last histProcs) back to back
// for d, each process's client asking limiter(i). Errors caused by the end
// of the run are expected; others are kept.
func (l *loadSheet) run(tb testing.TB, d time.Duration, limiter func(i int) smartsheet.RateLimiter) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for i := range loadProcs {
		c, err := smartsheet.New(smartsheet.Config{BaseURL: l.sim.URL(), Token: budgetToken,
			HTTPClient: &http.Client{Transport: l.transport}, Limiter: limiter(i), RetryBudget: l.retryBudget})
		if err != nil {
			tb.Fatal(err)
		}
		history := i >= loadProcs-histProcs
		for range perProcGors {
			wg.Go(func() {
				for ctx.Err() == nil {
					var err error
					if history {
						_, err = c.CellHistory(ctx, l.id, l.row, l.column)
					} else {
						_, _, err = c.GetSheet(ctx, l.id, smartsheet.GetSheetOptions{})
					}
					if errors.Is(err, context.DeadlineExceeded) {
						return // the run's end: no slot before it
					}
					if err != nil && ctx.Err() == nil {
						l.unexpectedMu.Lock()
						l.unexpected = append(l.unexpected, err)
						l.unexpectedMu.Unlock()
						return
					}
				}
			})
		}
	}
	wg.Wait()
}

// countingBudgetAPI counts the DynamoDB calls of the budgets.
type countingBudgetAPI struct {
	api                      dynamo.BudgetAPI
	updates, gets, conflicts atomic.Int64
}

func (c *countingBudgetAPI) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.gets.Add(1)
	return c.api.GetItem(ctx, in, o...)
}

func (c *countingBudgetAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.updates.Add(1)
	out, err := c.api.UpdateItem(ctx, in, o...)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		c.conflicts.Add(1)
	}
	return out, err
}

func budgetOptions() dynamo.BudgetOptions {
	return dynamo.BudgetOptions{RequestsPerMinute: perWindow, HistoryPerMinute: histPerWin, Window: window}
}

// Six processes sharing the budget in DynamoDB get no 429 and never put more
// than the limits in any sliding window, while using most of the budget.
func TestRateBudgetSharedAcrossProcesses(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		table := mustTable(t, api)
		db := &countingBudgetAPI{api: api}
		load := mustLoadSheet(t)
		load.run(t, loadRun, func(int) smartsheet.RateLimiter {
			return dynamo.NewRateBudget(db, table, budgetToken, budgetOptions())
		})

		for _, err := range load.unexpected {
			t.Errorf("call error = %v, want none", err)
		}
		tr := load.transport
		if tr.tooMany != 0 {
			t.Errorf("429 answers = %d of %d, want 0", tr.tooMany, tr.answered)
		}
		for _, ep := range []string{smartsim.EndpointGetSheet, smartsim.EndpointCellHistory} {
			if got := load.sim.Counter(ep).RateLimited; got != 0 {
				t.Errorf("simulator Counter(%s).RateLimited = %d, want 0", ep, got)
			}
		}
		if got := smartsim.MaxInWindow(tr.all, window); got > perWindow {
			t.Errorf("max requests in a sliding window = %d, want <= %d", got, perWindow)
		}
		if got := smartsim.MaxInWindow(tr.history, window); got > histPerWin {
			t.Errorf("max cell-history requests in a sliding window = %d, want <= %d", got, histPerWin)
		}
		// The budget admits C + run·r: 4 + 12 s × 4.8/s = 61 requests, 1 + 12 s
		// × 0.93/s = 12 of them cell history, less those whose slot (behind
		// the overall backlog of about 1.7 s) falls after the run. Most must
		// go: the budget is shared, not starved.
		if got, least := len(tr.all), 50; got < least {
			t.Errorf("requests sent = %d, want >= %d (most of the budget)", got, least)
		}
		if got, least := len(tr.history), 8; got < least {
			t.Errorf("cell-history requests sent = %d, want >= %d", got, least)
		}
		t.Logf("%d requests (%d cell history) in %s, max %d / %d in a window; DynamoDB: %d UpdateItem (%d lost races), %d GetItem, %.2f calls per request",
			len(tr.all), len(tr.history), loadRun, smartsim.MaxInWindow(tr.all, window), smartsim.MaxInWindow(tr.history, window),
			db.updates.Load(), db.conflicts.Load(), db.gets.Load(), float64(db.updates.Load()+db.gets.Load())/float64(max(1, len(tr.all))))
	})
}

// The same load with an in-memory limiter per process (what each Lambda had
// before the shared budget) gets 429s and exceeds the window: the test above
// can fail.
func TestIndependentLimitersExceedTheBudget(t *testing.T) {
	load := mustLoadSheet(t)
	load.retryBudget = time.Second // a 429's backoff (20 s) would outlast the run
	load.run(t, 3*time.Second, func(int) smartsheet.RateLimiter { return smartsheet.NewLimiter(perWindow, histPerWin) })
	tr := load.transport
	if tr.tooMany == 0 {
		t.Errorf("429 answers = 0 of %d, want some", tr.answered)
	}
	if got := smartsim.MaxInWindow(tr.all, window); got <= perWindow {
		t.Errorf("max requests in a sliding window = %d, want > %d", got, perWindow)
	}
	t.Logf("%d requests, %d answered 429; simulator: getSheet %+v, cellHistory %+v", len(tr.all), tr.tooMany,
		load.sim.Counter(smartsim.EndpointGetSheet), load.sim.Counter(smartsim.EndpointCellHistory))
}

// reserveSlot asks until it has a slot, sleeping the waits it is given, and
// returns the time spent in Reserve.
func reserveSlot(b *testing.B, budget *dynamo.RateBudget) time.Duration {
	var in time.Duration
	for {
		start := time.Now()
		wait, ok, err := budget.Reserve(b.Context(), smartsheet.Reservation{Now: time.Now()})
		in += time.Since(start)
		if err != nil {
			b.Fatalf("Reserve() error = %v", err)
		}
		time.Sleep(wait)
		if ok {
			return in
		}
	}
}

func reportBudget(b *testing.B, db *countingBudgetAPI, inReserve time.Duration) {
	n := float64(b.N)
	b.ReportMetric(float64(db.updates.Load()+db.gets.Load())/n, "ddb-calls/op")
	b.ReportMetric(float64(db.conflicts.Load())/n, "lost-races/op")
	b.ReportMetric(float64(inReserve.Microseconds())/1000/n, "reserve-ms/op")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRateBudgetReserve is what the budget adds to each Smartsheet
// request, on each emulator, at Smartsheet's limits: DynamoDB calls per
// reservation (ddb-calls/op), lost races, and the time spent in Reserve.
// "1 process" reserves one after another; "8 goroutines" race on the item
// through their own budgets, as concurrent functions do. Past the burst of
// 30 the pace is 4.5 a second: run it with -benchtime 100x.
func BenchmarkRateBudgetReserve(b *testing.B) {
	for _, e := range emulators {
		b.Run(e.name, func(b *testing.B) {
			e.ready(b)
			var api testAPI = client(e.endpoint, e.noCRC)
			if e.serialize {
				api = &serialized{api: api}
			}
			// Smartsheet's own limits (300 a minute: a burst of 30, then one
			// slot every 222 ms), the wait slept as the client does. Past the
			// burst the pace is the budget's, so the figures are per
			// reservation: DynamoDB calls, lost races, and the time spent in
			// Reserve itself (reserve-ms/op; the sleeps are not counted).
			opts := dynamo.BudgetOptions{}
			b.Run("1 process", func(b *testing.B) {
				db := &countingBudgetAPI{api: api}
				budget := dynamo.NewRateBudget(db, mustTable(b, api), budgetToken, opts)
				var inReserve time.Duration
				b.ResetTimer()
				for range b.N {
					inReserve += reserveSlot(b, budget)
				}
				reportBudget(b, db, inReserve)
			})
			b.Run("8 goroutines", func(b *testing.B) {
				db := &countingBudgetAPI{api: api}
				table := mustTable(b, api)
				var mu sync.Mutex
				var inReserve time.Duration
				b.SetParallelism(4) // × GOMAXPROCS 2
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					budget := dynamo.NewRateBudget(db, table, budgetToken, opts)
					var mine time.Duration
					for pb.Next() {
						mine += reserveSlot(b, budget)
					}
					mu.Lock()
					inReserve += mine
					mu.Unlock()
				})
				reportBudget(b, db, inReserve)
			})
			// Saturated: 8 goroutines want more than the budget (40 a
			// second here, so the run is short), queue on the item and sleep
			// until their slots, as the functions do under load; one in ten
			// is a cell-history request. ns/op is the budget's pace, not a
			// latency.
			b.Run("8 goroutines saturated", func(b *testing.B) {
				db := &countingBudgetAPI{api: api}
				table := mustTable(b, api)
				var n atomic.Int64
				b.SetParallelism(4) // × GOMAXPROCS 2
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					budget := dynamo.NewRateBudget(db, table, budgetToken,
						dynamo.BudgetOptions{RequestsPerMinute: 40, HistoryPerMinute: 10, Window: time.Second})
					for pb.Next() {
						history := n.Add(1)%10 == 0
						for {
							wait, ok, err := budget.Reserve(b.Context(), smartsheet.Reservation{History: history, Now: time.Now()})
							if err != nil {
								b.Errorf("Reserve() error = %v", err)
								return
							}
							time.Sleep(wait)
							if ok {
								break
							}
						}
					}
				})
				b.ReportMetric(float64(db.updates.Load()+db.gets.Load())/float64(b.N), "ddb-calls/op")
				b.ReportMetric(float64(db.conflicts.Load())/float64(b.N), "lost-races/op")
			})
		})
	}
}
