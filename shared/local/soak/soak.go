// Package soak is the chaos soak of issue 14, its first, in-process stage: a
// seeded generator plays rounds of random edits by several users and
// Smartsheet automation on generated billing sheets in the simulator, while
// about 30 % of the simulator's answers are faults (429, 4004, 4002, 4001,
// 500, 502, 503, timeouts, lost responses). After each round the real
// pipeline (pipeline.Runner over the real Smartsheet client, over HTTP, with
// the bbolt store, signed digests) runs until one run completes, and an
// oracle — computed from the generator's own record, never from the scan —
// checks the audit sheet: every expected change exactly once with the right
// values and author, nothing unexpected, no audit row ever deleted, and
// Verify passing.
//
// Not yet covered (later stages of issue 14): the serverless chain (Lambda
// runtime emulator, SQS duplicates and reordering, a Lambda killed mid-batch)
// and DynamoDB throttling and transaction conflicts.
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/bolt"
	"github.com/fieldaudit/billing-audit/shared/digestfile"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/shopspring/decimal"
)

// Config sizes a soak.
type Config struct {
	Seed   uint64
	Rounds int
	// EditsPerRound is the number of generator edits between two runs.
	EditsPerRound int
	// Sheets × Rows over Weeks (the last one open) are the billing sheets.
	Sheets, Rows, Weeks int
	// FaultRate is the share of Smartsheet calls answered with a fault.
	FaultRate float64
	// Attempts is how many runs a round may take before one completes.
	Attempts int
	// HTTPTimeout is the client's request timeout: how long a "timeout"
	// fault hangs.
	HTTPTimeout time.Duration
	// Dir holds the store, the signing key and the digests.
	Dir string
	// Log, when set, gets a line per round.
	Log io.Writer
}

func (c Config) withDefaults() Config {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Rounds <= 0 {
		c.Rounds = 20
	}
	if c.EditsPerRound <= 0 {
		c.EditsPerRound = 100
	}
	if c.Sheets <= 0 {
		c.Sheets = 4
	}
	if c.Rows <= 0 {
		c.Rows = 300
	}
	if c.Weeks <= 1 {
		c.Weeks = 6
	}
	if c.Attempts <= 0 {
		c.Attempts = 12
	}
	if c.HTTPTimeout <= 0 {
		c.HTTPTimeout = 500 * time.Millisecond
	}
	return c
}

// Problem is one thing the oracle found wrong.
type Problem struct {
	Round int
	Kind  string // lost | duplicated | unexpected | deleted | misattributed | wrong-impact | verify
	What  string
}

func (p Problem) String() string { return fmt.Sprintf("round %d: %s: %s", p.Round, p.Kind, p.What) }

// Result is what a soak did and found.
type Result struct {
	Seed             uint64
	Rounds           int
	Edits            int
	EditsByOp        map[Op]int
	Expected         int // changes the oracle expected, all rounds
	ExpectedByKind   map[string]int
	AuditRows        int
	Runs, FailedRuns int
	Calls, Faulted   int64
	FaultsByKind     map[smartsim.FaultKind]int64
	// Lost, Duplicated, Unexpected and Deleted are the final comparison's
	// counts; Misattributed counts changes named after someone who did not
	// make them, all rounds.
	Lost, Duplicated, Unexpected, Deleted, Misattributed int
	// WrongImpact counts changes written with another money impact than the
	// oracle's, all rounds.
	WrongImpact int
	// Attributed counts changes checked for their author (source not unknown).
	Attributed int
	// MaskedWriterInfo counts changes that writer info pinned on someone
	// whose only save of the row left its cell as it was (a same-value save,
	// or an edit reverted within the window): invisible to a scan, yet it
	// makes them the row's last modifier. A known product gap, reported
	// (Masked holds the first few) rather than failed.
	MaskedWriterInfo int
	Masked           []Problem
	VerifyOK         bool
	Problems         []Problem
	Elapsed          time.Duration
}

// OK reports a soak that found nothing wrong.
func (r Result) OK() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Unexpected == 0 && r.Deleted == 0 && r.Misattributed == 0 && r.WrongImpact == 0 &&
		r.VerifyOK && len(r.Problems) == 0
}

// Line is the soak's one summary line of key=value pairs.
func (r Result) Line() string {
	kinds := make([]string, 0, len(r.FaultsByKind))
	for k := range r.FaultsByKind {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	var by []string
	for _, k := range kinds {
		by = append(by, fmt.Sprintf("%s:%d", k, r.FaultsByKind[smartsim.FaultKind(k)]))
	}
	pct := 0.0
	if r.Calls > 0 {
		pct = 100 * float64(r.Faulted) / float64(r.Calls)
	}
	verify := "ok"
	if !r.VerifyOK {
		verify = "FAILED"
	}
	return fmt.Sprintf("soak: seed=%d rounds=%d edits=%d expected_changes=%d audit_rows=%d runs=%d failed_runs=%d smartsheet_calls=%d faulted=%d faulted_pct=%.1f faults=%s attributed=%d misattributed=%d masked_writer_info=%d wrong_impact=%d unexpected=%d lost=%d duplicated=%d deleted=%d verify=%s elapsed=%s",
		r.Seed, r.Rounds, r.Edits, r.Expected, r.AuditRows, r.Runs, r.FailedRuns, r.Calls, r.Faulted, pct, strings.Join(by, ","),
		r.Attributed, r.Misattributed, r.MaskedWriterInfo, r.WrongImpact, r.Unexpected, r.Lost, r.Duplicated, r.Deleted, verify, r.Elapsed.Round(time.Second))
}

type harness struct {
	cfg     Config
	srv     *smartsim.Server
	client  *smartsheet.Client
	store   *bolt.Store
	signer  *digestfile.Signer
	digests digestfile.Dir
	folder  int64
	auditID int64
	w       *world
	res     Result
	// want counts each expected change key over all rounds; seen is every
	// Change ID the audit sheet ever showed.
	want map[string]int
	seen map[string]bool
	// names maps an editor's email to their name.
	names map[string]string
}

// start is the soak's first simulated moment: a Wednesday, so the last
// week is closed and the current one open.
var start = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// Run plays a soak and checks every round; the error is for a soak that
// could not run (setup, a round no run completed), not for what it found.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if cfg.Dir == "" {
		return Result{}, errors.New("soak: Config.Dir is required")
	}
	began := time.Now()
	h, err := setup(cfg)
	if h != nil {
		defer h.close()
	}
	if err != nil {
		return Result{}, err
	}
	h.res.Seed = cfg.Seed
	// Round 0 is the baseline.
	for round := 0; round <= cfg.Rounds; round++ {
		if err := h.round(ctx, round); err != nil {
			return h.result(began), err
		}
	}
	return h.result(began), nil
}

func (h *harness) result(began time.Time) Result {
	r := h.res
	r.Rounds = max(0, r.Rounds)
	r.Edits, r.EditsByOp = h.w.edits, h.w.byOp
	for _, c := range h.srv.Counters() {
		r.Calls += c.Calls
		r.Faulted += c.Faults
	}
	r.FaultsByKind = h.srv.FaultCounts()
	r.Elapsed = time.Since(began)
	return r
}

func setup(cfg Config) (*harness, error) {
	srv := smartsim.NewServer(smartsim.Options{Seed: cfg.Seed, Clock: func() time.Time { return start }, Limits: smartsim.Limits{Disabled: true}})
	if _, err := srv.Listen("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("soak: start simulator: %w", err)
	}
	h := &harness{cfg: cfg, srv: srv, want: map[string]int{}, seen: map[string]bool{}, names: map[string]string{}}
	client, err := smartsheet.New(smartsheet.Config{
		BaseURL: srv.URL(), Token: "soak-token", ChangeAgent: "billing-audit-soak",
		HTTPClient: &http.Client{Timeout: cfg.HTTPTimeout}, RetryBudget: time.Minute,
		RequestsPerMinute: 1 << 20, HistoryPerMinute: 1 << 20,
		// Backoff is real time the soak need not wait: the faults are
		// drawn per call, not per second.
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	})
	if err != nil {
		return h, err
	}
	h.client = client
	if h.store, err = bolt.Open(cfg.Dir); err != nil {
		return h, err
	}
	if _, err := digestfile.CreateKey(cfg.Dir); err != nil {
		return h, err
	}
	if h.signer, err = digestfile.Open(cfg.Dir); err != nil {
		return h, err
	}
	h.digests = digestfile.Dir(filepath.Join(cfg.Dir, "digests"))
	current := start.AddDate(0, 0, (7-int(start.Weekday()))%7)
	current = time.Date(current.Year(), current.Month(), current.Day(), 0, 0, 0, 0, time.UTC)
	gen, err := srv.Populate(smartsim.GenConfig{Sheets: cfg.Sheets, Rows: cfg.Rows, Weeks: cfg.Weeks, Seed: cfg.Seed, EndWeek: current})
	if err != nil {
		return h, fmt.Errorf("soak: generate sheets: %w", err)
	}
	h.folder = gen.FolderID
	if h.w, err = newWorld(srv, cfg.Seed, gen, current, cfg.Weeks); err != nil {
		return h, err
	}
	for _, u := range editors {
		h.names[u.Email] = u.Name
	}
	if err := h.w.blankWeekEndings(20); err != nil {
		return h, fmt.Errorf("soak: blank week endings: %w", err)
	}
	if h.auditID, _, err = pipeline.EnsureAuditSheet(context.Background(), client, h.store, 0, "Billing Audit Log"); err != nil {
		return h, fmt.Errorf("soak: audit sheet: %w", err)
	}
	srv.FaultRate(cfg.FaultRate)
	return h, nil
}

func (h *harness) close() {
	if h.store != nil {
		_ = h.store.Close()
	}
	_ = h.srv.Close()
}

func (h *harness) runner() (*pipeline.Runner, error) {
	return pipeline.New(h.client, h.store, pipeline.Options{
		Audit: audit.DefaultConfig(), SourceFolderIDs: []int64{h.folder}, AuditSheetID: h.auditID,
		Clock: h.srv.Now, Logger: slog.New(slog.DiscardHandler), Signer: h.signer, Digests: h.digests,
		ReadBackDelay: time.Millisecond, LeaseWait: 5 * time.Second,
	})
}

// round plays one round: the edits (none in round 0, the baseline), runs
// until one completes, then the checks.
func (h *harness) round(ctx context.Context, n int) error {
	prev := h.w.snapshot()
	h.w.resetWindow()
	h.srv.AdvanceClock(20 * time.Minute)
	if n > 0 {
		for range h.cfg.EditsPerRound {
			h.srv.AdvanceClock(7 * time.Second)
			if err := h.w.Edit(); err != nil {
				return fmt.Errorf("soak: round %d: %w", n, err)
			}
		}
	}
	h.srv.AdvanceClock(time.Minute)
	cur := h.w.snapshot()
	now := h.srv.Now()
	var exp []expected
	if n > 0 {
		cfg := audit.DefaultConfig()
		exp = h.w.expect(prev, cur, now, cfg.Cutoff)
	}
	var lastErr error
	done := false
	for attempt := 0; attempt < h.cfg.Attempts && !done; attempt++ {
		r, err := h.runner()
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		_, err = r.Run(rctx)
		cancel()
		h.res.Runs++
		if err != nil {
			h.res.FailedRuns++
			if h.cfg.Log != nil {
				fmt.Fprintf(h.cfg.Log, "soak: round %d: run %d failed (run again): %v\n", n, attempt+1, err)
			}
			lastErr = err
			h.srv.AdvanceClock(time.Second)
			continue
		}
		done = true
	}
	if !done {
		return fmt.Errorf("soak: round %d: no run completed in %d attempts: %w", n, h.cfg.Attempts, lastErr)
	}
	h.res.Rounds = n
	if h.res.ExpectedByKind == nil {
		h.res.ExpectedByKind = map[string]int{}
	}
	for _, e := range exp {
		h.want[e.key]++
		h.res.ExpectedByKind[strings.Split(e.key, "|")[2]]++
	}
	h.res.Expected += len(exp)
	if err := h.check(ctx, n, exp); err != nil {
		return err
	}
	if h.cfg.Log != nil {
		fmt.Fprintf(h.cfg.Log, "soak: round %d: %d edits, %d changes expected, %d audit rows, %d runs (%d failed), %d problems\n",
			n, h.w.edits, len(exp), h.res.AuditRows, h.res.Runs, h.res.FailedRuns, len(h.res.Problems))
	}
	return nil
}

// check compares the audit sheet with the oracle after round n.
func (h *harness) check(ctx context.Context, n int, exp []expected) error {
	rows, err := h.readAudit()
	if err != nil {
		return err
	}
	h.res.AuditRows = len(rows)
	have := map[string]int{}
	ids := map[string]int{}
	for _, r := range rows {
		have[r.key]++
		ids[r.changeID]++
	}
	problem := func(kind, what string) {
		h.res.Problems = append(h.res.Problems, Problem{Round: n, Kind: kind, What: what})
	}
	h.res.Lost, h.res.Duplicated, h.res.Unexpected, h.res.Deleted = 0, 0, 0, 0
	keys := make([]string, 0, len(have)+len(h.want))
	for k := range h.want {
		keys = append(keys, k)
	}
	for k := range have {
		if _, ok := h.want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		w, g := h.want[k], have[k]
		switch {
		case g < w:
			h.res.Lost += w - g
			problem("lost", fmt.Sprintf("%s: on the sheet %d times, expected %d", k, g, w))
		case g > w && w > 0:
			h.res.Duplicated += g - w
			problem("duplicated", fmt.Sprintf("%s: on the sheet %d times, expected %d", k, g, w))
		case g > w:
			h.res.Unexpected += g
			problem("unexpected", fmt.Sprintf("%s: on the sheet %d times, expected never", k, g))
		}
	}
	for id, c := range ids {
		if c > 1 {
			h.res.Duplicated += c - 1
			problem("duplicated", fmt.Sprintf("Change ID %s on %d audit rows", id, c))
		}
	}
	for id := range h.seen {
		if ids[id] == 0 {
			h.res.Deleted++
			problem("deleted", "Change ID "+id+" is no longer on the audit sheet")
		}
	}
	// The money impact and the author of each new row, where the product
	// claims to know the author.
	byKey := map[string][]string{}
	impacts := map[string][]string{}
	for _, e := range exp {
		byKey[e.key] = append(byKey[e.key], e.users...)
		impacts[e.key] = append(impacts[e.key], e.impact)
	}
	for _, r := range rows {
		if h.seen[r.changeID] {
			continue
		}
		h.seen[r.changeID] = true
		if want, ok := impacts[r.key]; ok && !sameImpact(want, r.impact) {
			h.res.WrongImpact++
			problem("wrong-impact", fmt.Sprintf("%s: money impact %q, want one of %q", r.key, r.impact, want))
		}
		if r.source == "" || r.source == string(audit.SourceUnknown) || r.by == "" {
			continue
		}
		users, ok := byKey[r.key]
		if !ok {
			continue // reported above
		}
		h.res.Attributed++
		switch {
		case h.knows(users, r.by):
		case r.source == string(audit.SourceWriterInfo) && h.w.maskedSave(r.sheet, r.row, r.by, h.names):
			// The known gap of writer info (see BENCHMARKS.md, issue 14's
			// soak): counted and shown, not a failure of the soak.
			h.res.MaskedWriterInfo++
			if len(h.res.Masked) < 5 {
				h.res.Masked = append(h.res.Masked, Problem{Round: n, Kind: "masked-writer-info",
					What: fmt.Sprintf("%s: named %q (%s), want one of %v; the row's edits:%s", r.key, r.by, r.source, users, h.w.rowEdits(r.sheet, r.row))})
			}
		default:
			h.res.Misattributed++
			problem("misattributed", fmt.Sprintf("%s: named %q (%s), want one of %v; the row's edits:%s", r.key, r.by, r.source, users, h.w.rowEdits(r.sheet, r.row)))
		}
	}
	v, err := h.verify(ctx)
	if err != nil {
		return fmt.Errorf("soak: round %d: verify: %w", n, err)
	}
	h.res.VerifyOK = v.OK()
	if !v.OK() {
		problem("verify", v.Summary())
	}
	return nil
}

// sameImpact reports whether a written impact is one of want (by value; ""
// for unvalued).
func sameImpact(want []string, got string) bool {
	for _, w := range want {
		if w == "" || strings.TrimSpace(got) == "" {
			if w == strings.TrimSpace(got) {
				return true
			}
			continue
		}
		a, err1 := decimal.NewFromString(w)
		b, err2 := decimal.NewFromString(strings.TrimSpace(got))
		if err1 == nil && err2 == nil && a.Equal(b) {
			return true
		}
	}
	return false
}

func (h *harness) knows(users []string, by string) bool {
	for _, u := range users {
		if strings.EqualFold(u, by) || strings.EqualFold(h.names[u], by) {
			return true
		}
	}
	return false
}

// verify runs Verify through the faults, again while the faults stop it.
func (h *harness) verify(ctx context.Context) (audit.Verification, error) {
	var last error
	for range h.cfg.Attempts {
		r, err := h.runner()
		if err != nil {
			return audit.Verification{}, err
		}
		v, err := r.Verify(ctx)
		if err == nil {
			return v, nil
		}
		last = err
	}
	return audit.Verification{}, last
}
