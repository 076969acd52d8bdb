package dynamo

import (
	"container/heap"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// The bucket arithmetic and Reserve's decisions on a fake clock, against
// fakeBudgetAPI: an item that applies the budget's two update cases as
// DynamoDB would (atomically, one request at a time), and a cell-history
// request's swap. The expressions
// themselves are checked against moto and DynamoDB Local in
// budget_test.go.

var t0 = time.Date(2024, 6, 5, 14, 0, 0, 0, time.UTC)

func TestNewBucket(t *testing.T) {
	tests := []struct {
		name      string
		perWindow int
		window    time.Duration
		want      bucket
	}{
		{"300 a minute: C=30, r=4.5/s", 300, time.Minute, bucket{burst: 30, interval: 222_222_223}},
		{"30 a minute: C=3, r=0.45/s", 30, time.Minute, bucket{burst: 3, interval: 2_222_222_223}},
		{"exact interval", 70, time.Minute, bucket{burst: 7, interval: 952_380_953}},
		{"below 10: burst 1", 5, time.Minute, bucket{burst: 1, interval: 15 * time.Second.Nanoseconds()}},
		{"1 a minute", 1, time.Minute, bucket{burst: 1, interval: time.Minute.Nanoseconds()}},
		{"scaled window", 40, 15 * time.Second, bucket{burst: 4, interval: 416_666_667}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newBucket(tt.perWindow, tt.window)
			if got != tt.want {
				t.Fatalf("newBucket(%d, %s) = %+v, want %+v", tt.perWindow, tt.window, got, tt.want)
			}
			// C + window·r <= N: (N - C)·T >= window (T rounded up). N = 1 is
			// the documented exception (no slack).
			if tt.perWindow > 1 && (int64(tt.perWindow)-got.burst)*got.interval < int64(tt.window) {
				t.Errorf("newBucket(%d, %s): C + window/T = %.3f, want <= %d", tt.perWindow, tt.window,
					float64(got.burst)+float64(tt.window)/float64(got.interval), tt.perWindow)
			}
		})
	}
}

func TestBucketSlot(t *testing.T) {
	b := bucket{burst: 3, interval: 10}
	tests := []struct {
		name          string
		tat, now      int64
		wantAt, wantN int64
	}{
		{"never used", 0, 1000, 1000, 1010},
		{"idle: tat in the past", 900, 1000, 1000, 1010},
		{"tat now", 1000, 1000, 1000, 1010},
		{"busy, burst left", 1015, 1000, 1000, 1025},
		{"last token of the burst", 1020, 1000, 1000, 1030},
		{"burst used: next slot in the future", 1030, 1000, 1010, 1040},
		{"far ahead", 1100, 1000, 1080, 1110},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, next := b.slot(tt.tat, tt.now)
			if at != tt.wantAt || next != tt.wantN {
				t.Errorf("slot(%d, %d) = %d, %d, want %d, %d", tt.tat, tt.now, at, next, tt.wantAt, tt.wantN)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	b := NewRateBudget(nil, "t", "tok", BudgetOptions{RequestsPerMinute: 13, HistoryPerMinute: 4,
		Window: 110 * time.Nanosecond, Horizon: 50})
	// general: C=1, T=10; history: C=1, T=37
	if b.general != (bucket{1, 10}) || b.history != (bucket{1, 37}) {
		t.Fatalf("buckets = %+v %+v, want {1 10} {1 37}", b.general, b.history)
	}
	const now = 1000
	none := int64(math.MaxInt64)
	deadlineErr := budgetDeadlineError{b.pk, 0}
	tests := []struct {
		name     string
		st       tats
		history  bool
		deadline int64
		want     decision
	}{
		{name: "general, never used: idle", st: tats{}, deadline: none,
			want: decision{update: true, general: take{idle: true, hi: now + 50}}},
		{name: "general, busy within the horizon", st: tats{general: 1040}, deadline: none,
			want: decision{update: true, general: take{hi: now + 50}}},
		{name: "general, horizon capped by the deadline", st: tats{general: 1025}, deadline: now + 30,
			want: decision{update: true, general: take{hi: now + 30}}},
		{name: "general, beyond the horizon: wait", st: tats{general: 1075}, deadline: none,
			want: decision{wait: 25}},
		{name: "general, slot after the deadline", st: tats{general: 1040}, deadline: now + 20,
			want: decision{err: deadlineErr}},
		{name: "history, both idle", st: tats{general: 990, history: 900}, history: true, deadline: none,
			want: decision{swap: true, was: tats{990, 900}, set: tats{1010, 1037}, at: now}},
		{name: "history, general busy but free now", st: tats{general: 1000}, history: true, deadline: none,
			want: decision{swap: true, was: tats{1000, 0}, set: tats{1010, 1037}, at: now}},
		{name: "history budget used: wait for it", st: tats{general: 900, history: 1037}, history: true, deadline: none,
			want: decision{wait: 37}},
		{name: "history slot beyond the overall backlog: wait until the backlog reaches it", st: tats{general: 1010, history: 1037}, history: true, deadline: none,
			want: decision{wait: 27}},
		{name: "general reserved ahead: history goes at the overall slot", st: tats{general: 1030}, history: true, deadline: none,
			want: decision{swap: true, was: tats{1030, 0}, set: tats{1040, 1067}, at: 1030}},
		{name: "history free within the overall backlog", st: tats{general: 1050, history: 1030}, history: true, deadline: none,
			want: decision{swap: true, was: tats{1050, 1030}, set: tats{1060, 1087}, at: 1050}},
		{name: "history beyond the horizon: wait", st: tats{general: 1100}, history: true, deadline: none,
			want: decision{wait: 50}},
		{name: "history after the deadline", st: tats{history: 1037}, history: true, deadline: now + 36,
			want: decision{err: deadlineErr}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := b.decide(tt.st, tt.history, now, tt.deadline)
			opts := cmp.Options{cmp.AllowUnexported(decision{}, take{}, bucket{}, tats{}),
				cmp.Comparer(func(a, b error) bool { return (a == nil) == (b == nil) })}
			if diff := cmp.Diff(tt.want, got, opts); diff != "" {
				t.Errorf("decide(%+v, history %t, %d, %d) (-want +got):\n%s", tt.st, tt.history, now, tt.deadline, diff)
			}
			if tt.want.err != nil && !errors.Is(got.err, context.DeadlineExceeded) {
				t.Errorf("decide() error = %v, want one wrapping context.DeadlineExceeded", got.err)
			}
		})
	}
}

// fakeBudgetAPI is one budget item that applies Reserve's updates the way
// DynamoDB evaluates their conditions (see apply): the swap when :<v>set is
// given, the idle case when :<v>next is, else the busy case. Function fields inject failures.
type fakeBudgetAPI struct {
	mu    sync.Mutex
	item  map[string]int64 // attribute -> value; absent: not set
	calls map[string]int
	// fail, when set, may fail the n-th call (from 0) of op before it applies.
	fail func(op string, n int) error
	// noOldItem: a failed condition returns no item (like an emulator that
	// ignores ReturnValuesOnConditionCheckFailure).
	noOldItem bool
}

func newFakeBudgetAPI() *fakeBudgetAPI {
	return &fakeBudgetAPI{item: map[string]int64{}, calls: map[string]int{}}
}

func (f *fakeBudgetAPI) count(op string) (int, error) {
	n := f.calls[op]
	f.calls[op]++
	if f.fail != nil {
		return n, f.fail(op, n)
	}
	return n, nil
}

func (f *fakeBudgetAPI) attrs() map[string]types.AttributeValue {
	out := map[string]types.AttributeValue{}
	for k, v := range f.item {
		out[k] = num(v)
	}
	return out
}

func intValue(in map[string]types.AttributeValue, k string) int64 {
	v, _ := strconv.ParseInt(in[k].(*types.AttributeValueMemberN).Value, 10, 64)
	return v
}

func (f *fakeBudgetAPI) GetItem(_ context.Context, _ *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.count("GetItem"); err != nil {
		return nil, err
	}
	if len(f.item) == 0 {
		return &dynamodb.GetItemOutput{}, nil
	}
	return &dynamodb.GetItemOutput{Item: f.attrs()}, nil
}

func (f *fakeBudgetAPI) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.count("UpdateItem"); err != nil {
		return nil, err
	}
	values := in.ExpressionAttributeValues
	next := map[string]int64{}
	for _, v := range []string{"g", "h"} {
		attr, ok := in.ExpressionAttributeNames["#"+v]
		if !ok {
			continue
		}
		cur, exists := f.item[attr]
		if _, swap := values[":"+v+"set"]; swap {
			_, mustExist := values[":"+v+"was"]
			if exists != mustExist || exists && cur != intValue(values, ":"+v+"was") {
				return nil, f.conditionFailed()
			}
			next[attr] = intValue(values, ":"+v+"set")
			continue
		}
		now := intValue(values, ":now")
		if _, idle := in.ExpressionAttributeValues[":"+v+"next"]; idle {
			if exists && cur >= now {
				return nil, f.conditionFailed()
			}
			next[attr] = intValue(in.ExpressionAttributeValues, ":"+v+"next")
			continue
		}
		if !exists || cur < now || cur > intValue(in.ExpressionAttributeValues, ":"+v+"hi") {
			return nil, f.conditionFailed()
		}
		next[attr] = cur + intValue(in.ExpressionAttributeValues, ":"+v+"step")
	}
	for k, v := range next {
		f.item[k] = v
	}
	f.item["ttl"] = intValue(in.ExpressionAttributeValues, ":ttl")
	return &dynamodb.UpdateItemOutput{Attributes: f.attrs()}, nil
}

func (f *fakeBudgetAPI) conditionFailed() error {
	e := &types.ConditionalCheckFailedException{Message: new("The conditional request failed")}
	if !f.noOldItem && len(f.item) > 0 {
		e.Item = f.attrs()
	}
	return e
}

// simClient is one process of the simulation, with its own RateBudget (its
// own view of the item) on the shared fake item.
type simClient struct {
	budget  *RateBudget
	next    time.Time // when it asks next
	history bool      // every request of this client is a cell-history call
	idx     int
}

type simQueue []*simClient

func (q simQueue) Len() int           { return len(q) }
func (q simQueue) Less(i, j int) bool { return q[i].next.Before(q[j].next) }
func (q simQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i]; q[i].idx, q[j].idx = i, j }
func (q *simQueue) Push(x any)        { c := x.(*simClient); c.idx = len(*q); *q = append(*q, c) }
func (q *simQueue) Pop() any          { old := *q; c := old[len(old)-1]; *q = old[:len(old)-1]; return c }

// Several processes, each asking again as soon as its last request went,
// never put more than the limits in any sliding minute on a fake clock, and
// together use the budget fully: C at once, then r per second.
func TestRateBudgetSimulated(t *testing.T) {
	tests := []struct {
		name              string
		general, history  int // clients
		noOldItem         bool
		duration          time.Duration
		wantAll, wantHist int // requests sent
	}{
		// 10 minutes: C + 10·270 = 2,730 requests, of which 3 + 10·27 = 273 cell history.
		{name: "8 processes, 2 of them cell history", general: 6, history: 2, duration: 10 * time.Minute,
			wantAll: 2730, wantHist: 273},
		{name: "lost races read the item", general: 3, history: 1, noOldItem: true, duration: 10 * time.Minute,
			wantAll: 2730, wantHist: 273},
		{name: "one process", general: 1, duration: 2 * time.Minute, wantAll: 30 + 2*270},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeBudgetAPI()
			api.noOldItem = tt.noOldItem
			rng := rand.New(rand.NewPCG(1, 2))
			var q simQueue
			var clock time.Time // the asking client's time
			for i := range tt.general + tt.history {
				b := NewRateBudget(api, "audit", "tok", BudgetOptions{Jitter: rng.Float64, Now: func() time.Time { return clock }})
				heap.Push(&q, &simClient{budget: b, next: t0.Add(time.Duration(i) * time.Millisecond), history: i >= tt.general})
			}
			var all, hist []time.Time
			end := t0.Add(tt.duration)
			for q[0].next.Before(end) {
				c := q[0]
				clock = c.next
				wait, ok, err := c.budget.Reserve(context.Background(), smartsheet.Reservation{History: c.history, Now: c.next})
				if err != nil {
					t.Fatalf("Reserve() error = %v", err)
				}
				if wait < 0 {
					t.Fatalf("Reserve() wait = %s, want >= 0", wait)
				}
				c.next = c.next.Add(wait)
				if ok && c.next.Before(end) {
					all = append(all, c.next)
					if c.history {
						hist = append(hist, c.next)
					}
				}
				heap.Fix(&q, 0)
			}
			slices.SortFunc(all, func(a, b time.Time) int { return a.Compare(b) })
			slices.SortFunc(hist, func(a, b time.Time) int { return a.Compare(b) })
			if got := smartsim.MaxInWindow(all, time.Minute); got > 300 {
				t.Errorf("max requests in a sliding minute = %d, want <= 300", got)
			}
			if got := smartsim.MaxInWindow(hist, time.Minute); got > 30 {
				t.Errorf("max cell-history requests in a sliding minute = %d, want <= 30", got)
			}
			// The budget is used: within 1% (jitter and the history clients'
			// waits cost a little).
			if got := len(all); got > tt.wantAll || got < tt.wantAll*99/100 {
				t.Errorf("requests sent = %d, want %d (-1%%)", got, tt.wantAll)
			}
			if got := len(hist); tt.history > 0 && (got > tt.wantHist || got < tt.wantHist*95/100) {
				t.Errorf("cell-history requests sent = %d, want %d (-5%%)", got, tt.wantHist)
			}
			t.Logf("%d requests (%d cell history), DynamoDB calls %v", len(all), len(hist), api.calls)
		})
	}
}

// DynamoDB failures are retried, then fail the reservation with an error
// naming the item and the step; nothing is reserved meanwhile.
func TestRateBudgetStoreErrors(t *testing.T) {
	errDown := errors.New("connection refused")
	tests := []struct {
		name      string
		noOldItem bool
		prefill   map[string]int64 // the item before: makes the first update lose its race
		fail      func(op string, n int) error
		wantOK    bool
		wantErr   string
		wantCalls map[string]int
	}{
		{name: "transient failure retried", fail: func(op string, n int) error {
			if n < 2 {
				return errDown
			}
			return nil
		}, wantOK: true, wantCalls: map[string]int{"UpdateItem": 3}},
		{name: "down: error after the attempts", fail: func(string, int) error { return errDown },
			wantErr: "take a slot: 4 attempts: connection refused", wantCalls: map[string]int{"UpdateItem": 4}},
		{name: "read after a lost race fails", noOldItem: true, prefill: map[string]int64{"general": t0.UnixNano() + 1},
			fail: func(op string, _ int) error {
				if op == "GetItem" {
					return errDown
				}
				return nil
			}, wantErr: "read the item after a lost race: 4 attempts", wantCalls: map[string]int{"UpdateItem": 1, "GetItem": 4}},
		{name: "lost race: item from the failed condition", prefill: map[string]int64{"general": t0.UnixNano() + 1},
			wantOK: true, wantCalls: map[string]int{"UpdateItem": 2}},
		{name: "lost race: item read", noOldItem: true, prefill: map[string]int64{"general": t0.UnixNano() + 1},
			wantOK: true, wantCalls: map[string]int{"UpdateItem": 2, "GetItem": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeBudgetAPI()
			api.fail, api.noOldItem = tt.fail, tt.noOldItem
			for k, v := range tt.prefill {
				api.item[k] = v
			}
			b := NewRateBudget(api, "audit", "tok-SECRET", BudgetOptions{Backoff: time.Microsecond, Now: func() time.Time { return t0 }})
			_, ok, err := b.Reserve(context.Background(), smartsheet.Reservation{Now: t0})
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Reserve() error = %v, want nil", err)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), b.pk) {
					t.Fatalf("Reserve() error = %v, want one naming %s and %q", err, b.pk, tt.wantErr)
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("Reserve() error = %q names the token", err)
				}
			}
			if ok != tt.wantOK {
				t.Errorf("Reserve() reserved = %t, want %t", ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.wantCalls, api.calls); diff != "" {
				t.Errorf("DynamoDB calls (-want +got):\n%s", diff)
			}
		})
	}
}

// A slot is asked for the time the answer is expected (the question plus the
// recent round trip), the wait runs from the answer, and a slot the answer
// comes too late for (over half an interval) is dropped, not used late: sent
// late, a request could join later slots' requests in one window.
func TestRateBudgetSlowAnswers(t *testing.T) {
	const T = 222_222_223 // 300 a minute
	tests := []struct {
		name        string
		prefill     int64         // the item's general tat, from t0
		delay       time.Duration // each UpdateItem takes this long
		wantWait    time.Duration
		wantUpdates int
		wantGeneral int64 // the item after, from t0
	}{
		{name: "answer in time", delay: 100 * time.Millisecond, wantWait: 0, wantUpdates: 1, wantGeneral: T},
		// The first slot is at the question (no round trip known yet), its
		// answer 200 ms late: dropped. The next asks for a slot at the
		// expected answer, question + 200 ms, and is on time.
		{name: "answer late: slot dropped, the next one asked at the expected answer", delay: 200 * time.Millisecond,
			wantWait: 0, wantUpdates: 2, wantGeneral: int64(400*time.Millisecond) + T},
		{name: "slot ahead: wait from the answer", prefill: int64(time.Second) + 29*T, delay: 50 * time.Millisecond,
			wantWait: 900 * time.Millisecond, wantUpdates: 2, wantGeneral: int64(time.Second) + 30*T},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := t0
			api := newFakeBudgetAPI()
			if tt.prefill != 0 {
				api.item["general"] = t0.UnixNano() + tt.prefill
			}
			api.fail = func(op string, _ int) error {
				if op == "UpdateItem" && tt.delay > 0 {
					clock = clock.Add(tt.delay)
				}
				return nil
			}
			b := NewRateBudget(api, "audit", "tok", BudgetOptions{Now: func() time.Time { return clock }})
			wait, ok, err := b.Reserve(context.Background(), smartsheet.Reservation{Now: t0})
			if err != nil || !ok || wait != tt.wantWait {
				t.Errorf("Reserve() = %s, %t, %v, want %s, true, nil", wait, ok, err, tt.wantWait)
			}
			if got := api.calls["UpdateItem"]; got != tt.wantUpdates {
				t.Errorf("UpdateItem calls = %d, want %d", got, tt.wantUpdates)
			}
			if got := api.item["general"] - t0.UnixNano(); got != tt.wantGeneral {
				t.Errorf("item general = t0 + %d, want t0 + %d", got, tt.wantGeneral)
			}
		})
	}
}

// A cancelled context stops the retries at once.
func TestRateBudgetContextCancelled(t *testing.T) {
	api := newFakeBudgetAPI()
	ctx, cancel := context.WithCancel(context.Background())
	api.fail = func(string, int) error { cancel(); return context.Canceled }
	b := NewRateBudget(api, "audit", "tok", BudgetOptions{Backoff: time.Hour})
	_, ok, err := b.Reserve(ctx, smartsheet.Reservation{Now: t0})
	if !errors.Is(err, context.Canceled) || ok {
		t.Fatalf("Reserve() = reserved %t, %v, want false and context.Canceled", ok, err)
	}
	if api.calls["UpdateItem"] != 1 {
		t.Errorf("UpdateItem calls = %d, want 1", api.calls["UpdateItem"])
	}
}

func TestBudgetPK(t *testing.T) {
	a, b := budgetPK("token-a"), budgetPK("token-b")
	if a == b || a != budgetPK("token-a") {
		t.Errorf("budgetPK: %q and %q, want stable and distinct per token", a, b)
	}
	if !strings.HasPrefix(a, "BUDGET#") || len(a) != len("BUDGET#")+32 || strings.Contains(a, "token") {
		t.Errorf("budgetPK(token-a) = %q, want BUDGET# and 32 hex digits, no token", a)
	}
}
