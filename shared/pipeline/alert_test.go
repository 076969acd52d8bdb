package pipeline

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/google/go-cmp/cmp"
)

// fakeNotifier is a function-field fake of Notifier.
type fakeNotifier struct {
	NotifyFunc func(ctx context.Context, n Notice) error
}

func (f *fakeNotifier) Notify(ctx context.Context, n Notice) error { return f.NotifyFunc(ctx, n) }

// recorder is a Notifier that keeps what it was asked to deliver and fails
// with err while err is set.
type recorder struct {
	mu      sync.Mutex
	notices []Notice
	err     error
}

func (r *recorder) notifier() *fakeNotifier {
	return &fakeNotifier{NotifyFunc: func(_ context.Context, n Notice) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.err != nil {
			return r.err
		}
		r.notices = append(r.notices, n)
		return nil
	}}
}

// changeIDs lists the notices' changes, a digest's as one string.
func (r *recorder) changeIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, n := range r.notices {
		s := ""
		for i, a := range n.Alerts {
			if i > 0 {
				s += "+"
			}
			s += a.ChangeID
		}
		out = append(out, s)
	}
	return out
}

func TestAlertable(t *testing.T) {
	tests := []struct {
		name    string
		status  audit.Status
		risk    audit.Risk
		minRisk audit.Risk
		want    bool
	}{
		{"unauthorized high at HIGH", audit.StatusUnauthorized, audit.RiskHigh, audit.RiskHigh, true},
		{"unauthorized medium at HIGH", audit.StatusUnauthorized, audit.RiskMedium, audit.RiskHigh, false},
		{"unauthorized medium at MEDIUM", audit.StatusUnauthorized, audit.RiskMedium, audit.RiskMedium, true},
		{"unauthorized low at LOW", audit.StatusUnauthorized, audit.RiskLow, audit.RiskLow, true},
		{"unvalued counts as high", audit.StatusUnauthorized, audit.RiskUnknown, audit.RiskHigh, true},
		{"authorized high", audit.StatusAuthorized, audit.RiskHigh, audit.RiskLow, false},
		{"needs review high", audit.StatusNeedsReview, audit.RiskHigh, audit.RiskLow, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := audit.Change{Status: tt.status, Risk: tt.risk}
			if got := Alertable(c, tt.minRisk); got != tt.want {
				t.Errorf("Alertable(%s %s, %s) = %t, want %t", tt.status, tt.risk, tt.minRisk, got, tt.want)
			}
		})
	}
}

func TestRowURL(t *testing.T) {
	tests := []struct {
		name, sheet string
		row         int64
		want        string
	}{
		{"plain permalink", "https://app.smartsheet.com/sheets/abc", 42, "https://app.smartsheet.com/sheets/abc?rowId=42"},
		{"permalink with a query", "https://app.smartsheet.com/b/home?lx=s77", 42, "https://app.smartsheet.com/b/home?lx=s77&rowId=42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RowURL(tt.sheet, tt.row); got != tt.want {
				t.Errorf("RowURL(%q, %d) = %q, want %q", tt.sheet, tt.row, got, tt.want)
			}
		})
	}
}

// alertFixture is the fixture with two unauthorized MEDIUM changes written
// to the audit sheet, alerted at MEDIUM on two channels.
func alertFixture(t *testing.T) (*fixture, []audit.Change, *recorder, *recorder) {
	t.Helper()
	f := newFixture(t)
	changes := f.mustPublish(t)
	for _, c := range changes {
		if !c.Unauthorized() || c.Risk != audit.RiskMedium {
			t.Fatalf("fixture change %s is %s %s, want UNAUTHORIZED MEDIUM", c.ChangeID, c.Status, c.Risk)
		}
	}
	a, b := &recorder{}, &recorder{}
	f.opts.Alerts = []AlertChannel{{Name: "a", Notifier: a.notifier()}, {Name: "b", Notifier: b.notifier()}}
	f.opts.AlertMinRisk = audit.RiskMedium
	return f, changes, a, b
}

func TestAlertsOncePerChannel(t *testing.T) {
	f, changes, a, b := alertFixture(t)
	ctx := context.Background()
	ids := []string{changes[0].ChangeID, changes[1].ChangeID}

	b.err = errBoom // channel b is down
	res := f.runner(t).alertRecent(ctx)
	if got := a.changeIDs(); !cmp.Equal(got, ids) {
		t.Errorf("channel a got %v, want one notice per change %v", got, ids)
	}
	if len(res) != 2 || res[0].Notices != 2 || res[1].Err == nil || !errors.Is(res[1].Err, errBoom) || res[1].Notices != 0 {
		t.Errorf("results = %+v, want a: 2 notices, b: errBoom", res)
	}
	// The notice carries the links: the source row's permalink.
	if n := a.notices[0].Alerts[0]; n.SourceRowURL != changes[0].Permalink || n.Sheet != "Crew A" || n.WorkRequest == "" {
		t.Errorf("alert = %+v, want the source row's permalink, the sheet and the Work Request #", n)
	}

	b.err = nil // b is back: only b delivers, a sends nothing again
	f.runner(t).alertRecent(ctx)
	if got := a.changeIDs(); len(got) != 2 {
		t.Errorf("channel a got %v after the retry, want nothing more", got)
	}
	if got := b.changeIDs(); !cmp.Equal(got, ids) {
		t.Errorf("channel b got %v on the next run, want %v", got, ids)
	}
	f.runner(t).alertRecent(ctx)
	if got := len(a.changeIDs()) + len(b.changeIDs()); got != 4 {
		t.Errorf("a third send delivered again: %d notices in all, want 4", got)
	}
}

func TestAlertDigestAndMinRisk(t *testing.T) {
	tests := []struct {
		name        string
		digestOver  int
		minRisk     audit.Risk
		wantNotices int
		wantDigest  bool
	}{
		{name: "one notice each", digestOver: 10, minRisk: audit.RiskMedium, wantNotices: 2},
		{name: "over the threshold: one digest", digestOver: 1, minRisk: audit.RiskMedium, wantNotices: 1, wantDigest: true},
		{name: "below ALERT_MIN_RISK: nothing", digestOver: 10, minRisk: audit.RiskHigh, wantNotices: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, a, _ := alertFixture(t)
			f.opts.AlertDigestOver, f.opts.AlertMinRisk = tt.digestOver, tt.minRisk
			f.runner(t).alertRecent(context.Background())
			if got := len(a.notices); got != tt.wantNotices {
				t.Fatalf("notices = %d, want %d", got, tt.wantNotices)
			}
			if tt.wantDigest {
				n := a.notices[0]
				if !n.Digest || len(n.Alerts) != 2 || !n.Total.Equal(n.Alerts[0].Impact.Add(n.Alerts[1].Impact)) {
					t.Errorf("digest = %+v, want both changes and their total", n)
				}
			}
		})
	}
}

// TestAlertsNeverFailTheRun: whatever fails while alerting, the run
// succeeds, within the alert timeout, and nothing undelivered is recorded
// as sent.
func TestAlertsNeverFailTheRun(t *testing.T) {
	tests := []struct {
		name      string
		breakIt   func(f *fixture)
		notify    func(ctx context.Context, n Notice) error
		wantSent  int // changes recorded as sent on channel a
		wantCalls bool
	}{
		{name: "endpoint hangs past the timeout", notify: func(ctx context.Context, _ Notice) error { <-ctx.Done(); return ctx.Err() },
			wantCalls: true},
		{name: "reading what was sent fails", breakIt: func(f *fixture) {
			f.store.AlertsSentFunc = func(context.Context, string, []string) (map[string]time.Time, error) { return nil, errBoom }
		}},
		{name: "recording the delivery fails", breakIt: func(f *fixture) {
			f.store.MarkAlertsSentFunc = func(context.Context, string, []string, time.Time) error { return errBoom }
		}, wantCalls: true},
		{name: "the alert lease fails", breakIt: func(f *fixture) { f.failLease(AlertLease) }},
		{name: "another sender holds the lease", breakIt: func(f *fixture) {
			if ok, _ := f.mem.AcquireLease(context.Background(), AlertLease, "other", time.Hour); !ok {
				panic("lease")
			}
		}},
		{name: "the audit-row links fail: alerts go without them", breakIt: func(f *fixture) {
			next := f.sheet.GetSheetFunc
			f.sheet.GetSheetFunc = func(ctx context.Context, id int64, o smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
				if slices.Contains(o.Include, smartsheet.IncludeRowPermalink) { // only the alerts ask for row links
					return nil, false, errBoom
				}
				return next(ctx, id, o)
			}
		}, wantSent: 2, wantCalls: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.mustRecordChanges(t)
			calls := 0
			notify := tt.notify
			if notify == nil {
				notify = func(context.Context, Notice) error { return nil }
			}
			f.opts.Alerts = []AlertChannel{{Name: "a", Notifier: &fakeNotifier{NotifyFunc: func(ctx context.Context, n Notice) error {
				calls++
				return notify(ctx, n)
			}}}}
			f.opts.AlertMinRisk, f.opts.AlertTimeout = audit.RiskMedium, 200*time.Millisecond
			if tt.breakIt != nil {
				tt.breakIt(f)
			}
			start := time.Now()
			sum, err := f.runner(t).Run(context.Background())
			if err != nil {
				t.Fatalf("Run() = %v, want the run to succeed whatever the alerts do", err)
			}
			if d := time.Since(start); d > 5*time.Second+f.opts.AlertTimeout {
				t.Errorf("Run() took %v, want alerts bounded by the timeout and the lease wait", d)
			}
			if sum.Run.AuditRows != 2 {
				t.Errorf("Run() wrote %d audit rows, want 2", sum.Run.AuditRows)
			}
			if (calls > 0) != tt.wantCalls {
				t.Errorf("Notify called %d times, want calls %t", calls, tt.wantCalls)
			}
			ids := make([]string, 0, len(sum.Written))
			for _, c := range sum.Written {
				ids = append(ids, c.ChangeID)
			}
			sent, _ := f.mem.AlertsSent(context.Background(), "a", ids)
			if len(sent) != tt.wantSent {
				t.Errorf("%d changes recorded as sent, want %d", len(sent), tt.wantSent)
			}
		})
	}
}

// TestCompleteRunAlerts: a serverless run's completion sends the alerts of
// the changes it flushed, after announcing the run; a failing channel
// leaves the completion successful.
func TestCompleteRunAlerts(t *testing.T) {
	for _, down := range []bool{false, true} {
		f := newFixture(t)
		changes := f.mustRecordChanges(t)
		f.mem.runs[runR1] = RunRecord{RunID: runR1, StartedAt: t0.Add(-time.Minute), Batches: 1, Sheets: []int64{sourceID}}
		var order []string
		f.pub.RunCompletedFunc = func(context.Context, RunCompleted) error { order = append(order, "announced"); return nil }
		f.opts.AlertMinRisk = audit.RiskMedium
		f.opts.Alerts = []AlertChannel{{Name: "a", Notifier: &fakeNotifier{NotifyFunc: func(context.Context, Notice) error {
			order = append(order, "alert")
			if down {
				return errBoom
			}
			return nil
		}}}}
		if err := f.runner(t).CompleteRun(context.Background(), runR1, f.fan, f.pub); err != nil {
			t.Fatalf("CompleteRun(%s) with the channel down=%t = %v, want nil", runR1, down, err)
		}
		want := []string{"announced", "alert", "alert"}
		if down {
			want = want[:2] // the first failure leaves the rest to the next run
		}
		if !cmp.Equal(order, want) {
			t.Errorf("CompleteRun(%s) with the channel down=%t did %v, want %v", runR1, down, order, want)
		}
		sent, _ := f.mem.AlertsSent(context.Background(), "a", []string{changes[0].ChangeID, changes[1].ChangeID})
		if wantSent := map[bool]int{false: 2, true: 0}[down]; len(sent) != wantSent {
			t.Errorf("down=%t: %d changes recorded as alerted, want %d", down, len(sent), wantSent)
		}
	}
}
