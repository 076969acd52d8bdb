package dynamo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// BudgetAPI is the part of the DynamoDB client a RateBudget uses.
type BudgetAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// BudgetOptions tune a RateBudget. The zero value is Smartsheet's limits.
type BudgetOptions struct {
	// RequestsPerMinute and HistoryPerMinute are the token's limits per Window
	// (defaults smartsheet.DefaultRequestsPerMinute and
	// smartsheet.DefaultHistoryPerMinute). Every process sharing the item must
	// use the same values.
	RequestsPerMinute, HistoryPerMinute int
	// Window is the span the limits are counted over (default one minute).
	// Tests shorten it together with the simulator's clock.
	Window time.Duration
	// Horizon is how far ahead of now a request may reserve its slot
	// (default 30 s, a quarter of an analyzer's timeout).
	Horizon time.Duration
	// Attempts bounds the tries of a DynamoDB request that fails (default 4).
	Attempts int
	// Backoff is the first wait between those tries, doubled each time, with
	// jitter (default 50 ms).
	Backoff time.Duration
	// Jitter returns a number in [0, 1) (default math/rand/v2.Float64).
	Jitter func() float64
	// Now is the clock (default time.Now). It must be the wall clock: the
	// item's times are compared across processes. A reservation's Now (the
	// client's clock) only places its deadline.
	Now func() time.Time
}

// maxConflicts is how many lost races one Reserve retries at once before it
// tells the caller to wait a jittered moment and ask again.
const maxConflicts = 8

// budgetTTL keeps the item of a token no longer used from living forever;
// every update pushes it back. Long past any tat, so the expiry of an item
// can only ever find a full bucket.
const budgetTTL = 24 * time.Hour

// RateBudget is the token's rate budget shared by every process through one
// item of the audit table: a smartsheet.RateLimiter (the package doc's "The
// Smartsheet rate budget" says how, and why it never exceeds the limits).
type RateBudget struct {
	api     BudgetAPI
	table   string
	pk      string
	general bucket
	history bucket
	horizon int64
	opts    BudgetOptions

	// turn is held by the reservation this process has in flight, so that
	// the process's own requests never race each other on the item (a lost
	// race costs a second update, and a read where the failed condition does
	// not return the item): only other processes' requests can.
	turn chan struct{}

	mu   sync.Mutex
	seen tats
	rtt  time.Duration
}

var _ smartsheet.RateLimiter = (*RateBudget)(nil)

// NewRateBudget returns the budget of token in table through api. The token
// is only hashed into the item's key.
func NewRateBudget(api BudgetAPI, table, token string, opts BudgetOptions) *RateBudget {
	if opts.RequestsPerMinute <= 0 {
		opts.RequestsPerMinute = smartsheet.DefaultRequestsPerMinute
	}
	if opts.HistoryPerMinute <= 0 {
		opts.HistoryPerMinute = smartsheet.DefaultHistoryPerMinute
	}
	if opts.Window <= 0 {
		opts.Window = time.Minute
	}
	if opts.Horizon <= 0 {
		opts.Horizon = 30 * time.Second
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 4
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 50 * time.Millisecond
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &RateBudget{
		api: api, table: table, pk: budgetPK(token),
		general: newBucket(opts.RequestsPerMinute, opts.Window),
		history: newBucket(opts.HistoryPerMinute, opts.Window),
		horizon: int64(opts.Horizon), opts: opts, turn: make(chan struct{}, 1),
	}
}

// bucket is a token bucket of capacity burst refilled with one token every
// interval (nanoseconds), its state a tat.
type bucket struct {
	burst    int64
	interval int64
}

// newBucket is the bucket of perWindow requests in any window: capacity
// perWindow/10 (at least 1), the rest refilled over the window, the interval
// rounded up so the bucket is never faster than burst + window/interval <=
// perWindow. perWindow = 1 gets burst 1 and one token per window, which
// holds only through the strict "<" of a half-open window (no slack).
func newBucket(perWindow int, window time.Duration) bucket {
	burst := max(1, int64(perWindow)/10)
	refill := max(1, int64(perWindow)-burst)
	return bucket{burst: burst, interval: (int64(window) + refill - 1) / refill}
}

// slot is the earliest time >= now at which a request may go when the
// bucket's tat is tat (0: never used), and the tat after it.
func (b bucket) slot(tat, now int64) (at, next int64) {
	next = max(tat, now) + b.interval
	return max(now, next-b.burst*b.interval), next
}

// highest is the largest tat that still lets a request at now go at most
// ahead after now.
func (b bucket) highest(now, ahead int64) int64 { return now + (b.burst-1)*b.interval + ahead }

// tats are the item's two buckets (0: not yet used).
type tats struct{ general, history int64 }

// take is a general request's update: idle (the tat is before now or unset:
// SET tat = now + T) or busy (tat in [now, hi]: SET tat = tat + T).
type take struct {
	idle bool
	hi   int64
}

// decision is what Reserve does with a request, given a lower bound of the
// item.
type decision struct {
	// err: the slot comes after the deadline.
	err error
	// wait > 0 without an update: ask again after wait (plus jitter).
	wait time.Duration
	// update: a general request's update.
	update  bool
	general take
	// swap: a cell-history request's update, both tats from exactly was (0:
	// unset) to set, the request going at at (Unix ns).
	swap     bool
	was, set tats
	at       int64
}

// budgetDeadlineError is returned when the slot would come after the deadline.
type budgetDeadlineError struct {
	item string
	wait time.Duration
}

func (e budgetDeadlineError) Error() string {
	return fmt.Sprintf("rate budget %s: next slot in %s is after the context deadline", e.item, e.wait)
}

func (e budgetDeadlineError) Unwrap() error { return context.DeadlineExceeded }

// decide plans a request at now (Unix ns) with the given deadline
// (math.MaxInt64: none) from st, a lower bound of the item: a refusal or a
// deadline error decided from it holds for the item too.
func (b *RateBudget) decide(st tats, history bool, now, deadline int64) decision {
	atG, _ := b.general.slot(st.general, now)
	if !history {
		switch {
		case atG > deadline:
			return decision{err: budgetDeadlineError{b.pk, time.Duration(atG - now)}}
		case atG-now > b.horizon:
			return decision{wait: time.Duration(atG - now - b.horizon)}
		}
		ahead := min(b.horizon, deadline-now)
		return decision{update: true, general: take{idle: st.general < now, hi: b.general.highest(now, ahead)}}
	}
	atH, _ := b.history.slot(st.history, now)
	switch {
	case atH > deadline || atG > deadline:
		return decision{err: budgetDeadlineError{b.pk, time.Duration(max(atG, atH) - now)}}
	case atH > atG:
		// Its own budget holds it back. Taking the overall token at atH
		// would move the overall tat past the tokens before atH, lost to
		// every other request: wait until the overall slot reaches atH.
		return decision{wait: time.Duration(atH - atG)}
	case atG-now > b.horizon:
		return decision{wait: time.Duration(atG - now - b.horizon)}
	}
	// Both buckets take the request at the overall slot atG, as if it
	// arrived then (the cell-history tokens before atG go unused, but every
	// later request goes after atG anyway). That needs their exact values,
	// which st may not be: a lost race brings them.
	_, g := b.general.slot(st.general, atG)
	_, h := b.history.slot(st.history, atG)
	return decision{swap: true, was: st, set: tats{general: g, history: h}, at: atG}
}

// Reserve implements smartsheet.RateLimiter: one conditional UpdateItem in
// the common case, none when the item last seen already says wait.
func (b *RateBudget) Reserve(ctx context.Context, r smartsheet.Reservation) (time.Duration, bool, error) {
	deadline := int64(math.MaxInt64)
	if !r.Deadline.IsZero() {
		deadline = b.opts.Now().Add(r.Deadline.Sub(r.Now)).UnixNano()
	}
	select {
	case b.turn <- struct{}{}:
		defer func() { <-b.turn }()
	case <-ctx.Done():
		return 0, false, fmt.Errorf("rate budget %s: wait for this process's reservation in flight: %w", b.pk, ctx.Err())
	}
	fresh := false
	for range maxConflicts {
		// The request arrives, in the bucket's terms, when the answer is
		// expected: a slot at the question would be late by the round trip.
		now := b.opts.Now().Add(b.roundTrip())
		d := b.decide(b.lowerBound(), r.History, now.UnixNano(), deadline)
		if d.err != nil {
			return 0, false, d.err
		}
		if !d.update && !d.swap {
			if r.History && !fresh {
				// A cell-history request waits for the overall slot as last
				// seen, which other processes' requests keep moving: read
				// where it is now, or it waits for a stale one and then
				// queues behind the whole backlog again.
				item, err := b.read(ctx, "read the item before a cell-history wait")
				if err != nil {
					return 0, false, err
				}
				b.observe(tatsOf(item))
				fresh = true
				continue
			}
			return d.wait + b.jitter(), false, nil
		}
		st, ok, err := b.apply(ctx, d, now)
		if err != nil {
			return 0, false, err
		}
		if !ok {
			// Lost a race: apply has recorded the item as it is; plan again.
			fresh = true
			continue
		}
		at := d.at
		if d.update {
			at = max(now.UnixNano(), st.general-b.general.burst*b.general.interval)
		}
		present := b.opts.Now().UnixNano()
		if late := present - at; late > b.general.interval/2 {
			// The answer came too late to go at the slot (DynamoDB slower
			// than it was): sent now, the request could join later slots'
			// requests in one window (the bound allows less than one
			// interval of lateness). The slot is lost, never used twice;
			// take another.
			continue
		}
		return time.Duration(max(0, at-present)), true, nil
	}
	return b.jitter() + time.Duration(b.general.interval)/4, false, nil
}

// jitter is a random quarter of the overall interval, so that the requests
// waiting for the same slot do not all ask again at once.
func (b *RateBudget) jitter() time.Duration {
	return time.Duration(b.opts.Jitter() * float64(b.general.interval) / 4)
}

// roundTrip is the recent time an update takes (a moving average).
func (b *RateBudget) roundTrip() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rtt
}

func (b *RateBudget) noteRoundTrip(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rtt == 0 {
		b.rtt = d
		return
	}
	b.rtt = (3*b.rtt + d) / 4
}

func (b *RateBudget) lowerBound() tats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen
}

func (b *RateBudget) observe(st tats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seen.general = max(b.seen.general, st.general)
	b.seen.history = max(b.seen.history, st.history)
}

// Attribute names of the budget item (see the package doc).
const (
	attrGeneral = "general"
	attrHistory = "history"
)

// apply sends d's update. ok false: a condition failed, and the item as it
// is has been observed.
func (b *RateBudget) apply(ctx context.Context, d decision, now time.Time) (tats, bool, error) {
	n := now.UnixNano()
	names := map[string]string{"#ttl": "ttl"}
	values := map[string]types.AttributeValue{":ttl": num(now.Add(budgetTTL).Unix())}
	var conds, sets []string
	if d.update {
		names["#g"], values[":now"] = attrGeneral, num(n)
		if d.general.idle {
			conds = append(conds, "(attribute_not_exists(#g) OR #g < :now)")
			sets = append(sets, "#g = :gnext")
			values[":gnext"] = num(n + b.general.interval)
		} else {
			conds = append(conds, "#g BETWEEN :now AND :ghi")
			sets = append(sets, "#g = #g + :gstep")
			values[":ghi"], values[":gstep"] = num(d.general.hi), num(b.general.interval)
		}
	}
	if d.swap {
		swap := func(attr, v string, was, set int64) {
			names["#"+v] = attr
			if was == 0 {
				conds = append(conds, "attribute_not_exists(#"+v+")")
			} else {
				conds = append(conds, "#"+v+" = :"+v+"was")
				values[":"+v+"was"] = num(was)
			}
			sets = append(sets, "#"+v+" = :"+v+"set")
			values[":"+v+"set"] = num(set)
		}
		swap(attrGeneral, "g", d.was.general, d.set.general)
		swap(attrHistory, "h", d.was.history, d.set.history)
	}
	sets = append(sets, "#ttl = :ttl")
	in := &dynamodb.UpdateItemInput{
		TableName:                           &b.table,
		Key:                                 key(b.pk, skBudget),
		ConditionExpression:                 aws.String(strings.Join(conds, " AND ")),
		UpdateExpression:                    aws.String("SET " + strings.Join(sets, ", ")),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	var out *dynamodb.UpdateItemOutput
	err := b.retry(ctx, "take a slot", func() (err error) {
		start := b.opts.Now()
		out, err = b.api.UpdateItem(ctx, in)
		if err == nil || isConditionFailed(err) {
			b.noteRoundTrip(b.opts.Now().Sub(start))
		}
		return err
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		item := ccf.Item
		if len(item) == 0 { // an emulator that does not return it
			if item, err = b.read(ctx, "read the item after a lost race"); err != nil {
				return tats{}, false, err
			}
		}
		b.observe(tatsOf(item))
		return tats{}, false, nil
	}
	if err != nil {
		return tats{}, false, err
	}
	st := tatsOf(out.Attributes)
	b.observe(st)
	return st, true, nil
}

// read is the item as it is (strongly consistent).
func (b *RateBudget) read(ctx context.Context, step string) (map[string]types.AttributeValue, error) {
	var out *dynamodb.GetItemOutput
	err := b.retry(ctx, step, func() (err error) {
		out, err = b.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: &b.table, Key: key(b.pk, skBudget), ConsistentRead: aws.Bool(true)})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

// retry calls try up to Attempts times while it fails with anything but a
// failed condition or the context's end, waiting a jittered, doubling
// backoff in between. The error names the item and the step.
func (b *RateBudget) retry(ctx context.Context, step string, try func() error) error {
	wait := b.opts.Backoff
	for attempt := 1; ; attempt++ {
		err := try()
		if err == nil || isConditionFailed(err) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("rate budget %s: %s: %w", b.pk, step, ctx.Err())
		}
		if attempt >= b.opts.Attempts {
			return fmt.Errorf("rate budget %s: %s: %d attempts: %w", b.pk, step, attempt, err)
		}
		t := time.NewTimer(wait/2 + time.Duration(b.opts.Jitter()*float64(wait)))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("rate budget %s: %s: %w (after %v)", b.pk, step, ctx.Err(), err)
		case <-t.C:
		}
		wait *= 2
	}
}

func num(v int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// tatsOf reads the buckets of an item (a missing or unreadable one is 0: a
// lower bound, which only ever costs a failed condition).
func tatsOf(item map[string]types.AttributeValue) tats {
	get := func(name string) int64 {
		n, ok := item[name].(*types.AttributeValueMemberN)
		if !ok {
			return 0
		}
		v, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return 0
		}
		return v
	}
	return tats{general: get(attrGeneral), history: get(attrHistory)}
}
