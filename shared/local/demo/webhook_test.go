package demo_test

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/bolt"
	"github.com/fieldaudit/billing-audit/shared/listen"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// The real-time path, end to end through the real simulator delivering
// signed callbacks over HTTP: edit → debounced callback → listener
// (webhook.Receiver, bolt-backed ports) → refresh worker →
// Runner.RefreshRows → audit row.

const (
	hookDebounce = 200 * time.Millisecond
	ownAgent     = "billing-audit-test"
)

// readRecorder is the Smartsheet client, noting the row ids of targeted
// reads (rowIds) and how many rows they returned.
type readRecorder struct {
	*smartsheet.Client
	mu       sync.Mutex
	targeted [][]int64
	rowsRead int
}

func (r *readRecorder) ForEachSheetPage(ctx context.Context, sheetID int64, opts smartsheet.GetSheetOptions, fn func(*smartsheet.Sheet) error) error {
	return r.Client.ForEachSheetPage(ctx, sheetID, opts, func(s *smartsheet.Sheet) error {
		if len(opts.RowIDs) > 0 {
			r.mu.Lock()
			r.targeted = append(r.targeted, slices.Clone(opts.RowIDs))
			r.rowsRead += len(s.Rows)
			r.mu.Unlock()
		}
		return fn(s)
	})
}

func (r *readRecorder) reset() ([][]int64, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, n := r.targeted, r.rowsRead
	r.targeted, r.rowsRead = nil, 0
	return t, n
}

// gate holds refreshes while closed, so a test can look between the
// callback and the refresh.
type gate struct {
	r       listen.Refresher
	closed  atomic.Bool
	arrived chan struct{}
	release chan struct{}
}

func (g *gate) RefreshRows(ctx context.Context, sheetID int64, rowIDs, deleted []int64) ([]audit.Change, error) {
	if g.closed.Load() {
		g.arrived <- struct{}{}
		<-g.release
	}
	return g.r.RefreshRows(ctx, sheetID, rowIDs, deleted)
}

type hookStack struct {
	*stack
	api      *readRecorder
	addr     string
	runner   *pipeline.Runner
	gate     *gate
	listener *listen.Listener
	used     map[int64]bool
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newHookStack(tb testing.TB, size demo.Size) *hookStack {
	tb.Helper()
	srv := smartsimtest.Start(tb, smartsim.Options{Webhooks: smartsim.WebhookOptions{Debounce: hookDebounce,
		RetryDelays: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}}})
	client, err := smartsheet.New(smartsheet.Config{BaseURL: srv.URL(), Token: "test-token", ChangeAgent: ownAgent, RetryBudget: 10 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	store, err := bolt.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	setup, err := demo.Prepare(srv, size)
	if err != nil {
		tb.Fatal(err)
	}
	auditID, _, err := pipeline.EnsureAuditSheet(context.Background(), client, store, 0, "Billing Audit Log")
	if err != nil {
		tb.Fatal(err)
	}
	h := &hookStack{stack: &stack{srv: srv, client: client, store: store, dir: dir, setup: setup, auditID: auditID},
		api: &readRecorder{Client: client}, addr: freeAddr(tb), used: map[int64]bool{}}
	h.runner, err = pipeline.New(h.api, store, pipeline.Options{
		Audit: audit.DefaultConfig(), SourceFolderIDs: []int64{setup.Gen.FolderID}, AuditSheetID: auditID,
		Clock: srv.Now, Logger: slog.New(slog.DiscardHandler),
		Webhooks:           pipeline.WebhookAttributor(store, client),
		WebhookCallbackURL: "http://" + h.addr + listen.DefaultPath, WebhookAPI: client, WebhookSecrets: store,
	})
	if err != nil {
		tb.Fatal(err)
	}
	h.gate = &gate{r: h.runner, arrived: make(chan struct{}), release: make(chan struct{})}
	h.listen(tb)
	tb.Cleanup(func() {
		if h.listener != nil {
			h.listener.Close()
		}
	})
	return h
}

// listen starts the listener on the stack's fixed address.
func (h *hookStack) listen(tb testing.TB) {
	tb.Helper()
	l, err := listen.Start(context.Background(), listen.Options{
		Addr: h.addr, Secrets: webhook.StoredSecrets(h.store, nil), Nonces: h.store, Records: h.store, Meta: h.store,
		Refresher: h.gate, OwnChangeAgent: ownAgent, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	h.listener = l
}

// closedWeekRow picks an unused closed-week row of a sheet with a price.
func (h *hookStack) closedWeekRow(tb testing.TB, sheetID int64) int64 {
	tb.Helper()
	sh, err := h.srv.Sheet(sheetID)
	if err != nil {
		tb.Fatal(err)
	}
	cols := h.setup.Columns[sheetID]
	week := h.setup.ClosedWeek.Format(time.DateOnly)
	for i := range sh.Rows {
		r := &sh.Rows[i]
		we, price := r.Cell(cols[smartsim.ColWeekEnding]), r.Cell(cols[smartsim.ColTotalPrice])
		if !h.used[r.ID] && we != nil && we.Value.Text() == week && price != nil && !price.Value.IsZero() {
			h.used[r.ID] = true
			return r.ID
		}
	}
	tb.Fatalf("no unused closed-week row on sheet %d", sheetID)
	return 0
}

// editPrice sets a row's Units Total Price as user.
func (h *hookStack) editPrice(tb testing.TB, user smartsheet.User, sheetID, rowID int64, price string) {
	tb.Helper()
	if _, err := h.srv.SetCell(smartsim.Edit{User: user}, sheetID, rowID, h.setup.Columns[sheetID][smartsim.ColTotalPrice], smartsheet.NumberValue(price)); err != nil {
		tb.Fatal(err)
	}
}

// waitAuditRows polls the audit sheet until it holds n rows.
func (h *hookStack) waitAuditRows(tb testing.TB, n int, within time.Duration) []map[string]string {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		sh, err := h.srv.Sheet(h.auditID)
		if err != nil {
			tb.Fatal(err)
		}
		if len(sh.Rows) >= n {
			t, ok := tb.(*testing.T)
			if !ok {
				return nil
			}
			return h.auditRows(t)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("audit sheet has %d rows after %v, want %d", len(sh.Rows), within, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *hookStack) flush(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.FlushWebhooks(ctx); err != nil {
		tb.Fatal(err)
	}
}

func (h *hookStack) scan(tb testing.TB) pipeline.Summary {
	tb.Helper()
	sum, err := h.runner.Run(context.Background())
	if err != nil {
		tb.Fatalf("Run() error = %v", err)
	}
	return sum
}

func (h *hookStack) webhookOf(tb testing.TB, sheetID int64) smartsheet.Webhook {
	tb.Helper()
	for _, w := range h.srv.Webhooks() {
		if w.ScopeObjectID == sheetID {
			return w
		}
	}
	tb.Fatalf("no webhook on sheet %d", sheetID)
	return smartsheet.Webhook{}
}

func TestWebhookEditToAuditRow(t *testing.T) {
	h := newHookStack(t, demo.Size{Sheets: 3, Rows: 60, Weeks: 3})
	ctx := context.Background()
	a, b, c := h.setup.Gen.SheetIDs[0], h.setup.Gen.SheetIDs[1], h.setup.Gen.SheetIDs[2]

	// The baseline scan registers one enabled webhook per source sheet
	// (EnsureWebhooks), none on the audit sheet.
	base := h.scan(t)
	if len(base.Changes) != 0 {
		t.Fatalf("baseline found %d changes", len(base.Changes))
	}
	hooks := h.srv.Webhooks()
	if len(hooks) != 3 {
		t.Fatalf("webhooks after the first scan = %d, want 3 (one per source sheet)", len(hooks))
	}
	for _, w := range hooks {
		st, _, _ := h.store.SheetState(ctx, w.ScopeObjectID)
		if w.Status != smartsheet.WebhookEnabled || w.CallbackURL != h.listener.URL() || w.ScopeObjectID == h.auditID ||
			w.Subscope == nil || !slices.Equal(w.Subscope.ColumnIDs, st.WebhookColumnIDs) {
			t.Errorf("webhook %+v: want ENABLED, callback %s, subscope %v, not the audit sheet", w, h.listener.URL(), st.WebhookColumnIDs)
		}
		cols := h.setup.Columns[w.ScopeObjectID]
		for _, title := range []string{smartsim.ColTotalPrice, smartsim.ColQuantity, smartsim.ColWeekEnding, smartsim.ColSnapshotDate} {
			if !slices.Contains(st.WebhookColumnIDs, cols[title]) {
				t.Errorf("subscope of sheet %d lacks %s", w.ScopeObjectID, title)
			}
		}
		if slices.Contains(st.WebhookColumnIDs, cols[smartsim.ColForeman]) {
			t.Errorf("subscope of sheet %d holds the untracked Foreman column", w.ScopeObjectID)
		}
	}
	// Edits from now on are later than the baseline (the simulator keeps
	// whole seconds).
	h.srv.AdvanceClock(time.Second)

	t.Run("edit reaches the audit sheet attributed by the webhook", func(t *testing.T) {
		row := h.closedWeekRow(t, a)
		h.api.reset()
		history := h.srv.Counter(smartsim.EndpointCellHistory).Calls
		editAt := time.Now()
		h.editPrice(t, demo.Kim, a, row, "98765.43")
		rows := h.waitAuditRows(t, 1, 5*time.Second)
		latency := time.Since(editAt)
		t.Logf("edit to audit row: %v (simulator debounce %v)", latency, hookDebounce)
		if latency >= 5*time.Second {
			t.Errorf("edit reached the audit sheet after %v, want < 5s", latency)
		}
		r := rows[0]
		if r[audit.LogChangedBy] != demo.Kim.Email || r[audit.LogAttribution] != string(audit.SourceWebhook) ||
			r[audit.LogUnauthorized] != "YES" || r[audit.LogKind] != string(audit.KindValueChanged) ||
			r[audit.LogColumn] != smartsim.ColTotalPrice || r[audit.LogNewValue] != "98765.43" {
			t.Errorf("audit row = %v; want Kim's closed-week price edit, by webhook, UNAUTHORIZED", r)
		}
		if n := h.srv.Counter(smartsim.EndpointCellHistory).Calls - history; n != 0 {
			t.Errorf("cell-history calls = %d, want 0", n)
		}
		if targeted, n := h.api.reset(); len(targeted) != 1 || !slices.Equal(targeted[0], []int64{row}) || n != 1 {
			t.Errorf("refresh read rowIds %v (%d rows), want exactly [%d] (1 row)", targeted, n, row)
		}
		// The scheduled scan sees the same edit: nothing new, one row.
		sum := h.scan(t)
		if len(sum.Changes) != 0 || len(h.auditRows(t)) != 1 {
			t.Errorf("scan after the refresh: %d new changes, %d audit rows; want 0, 1", len(sum.Changes), len(h.auditRows(t)))
		}
	})

	t.Run("seen by both the refresh and the scan: one Change ID, one row", func(t *testing.T) {
		before := len(h.auditRows(t))
		row := h.closedWeekRow(t, b)
		h.gate.closed.Store(true)
		h.srv.AdvanceClock(time.Second)
		h.editPrice(t, demo.Raj, b, row, "4321.00")
		<-h.gate.arrived // the callback is in: records stored, refresh held
		// A scan at this moment detects the change against the same baseline.
		tm, err := pipeline.New(h.client, h.store, pipeline.Options{Audit: audit.DefaultConfig(), SourceSheetIDs: []int64{b},
			AuditSheetID: h.auditID, Clock: h.srv.Now, Logger: slog.New(slog.DiscardHandler), TestMode: true,
			Webhooks: pipeline.WebhookAttributor(h.store, h.client)})
		if err != nil {
			t.Fatal(err)
		}
		seen, err := tm.Run(ctx)
		if err != nil || len(seen.Changes) != 1 {
			t.Fatalf("test-mode scan = %d changes, %v; want 1", len(seen.Changes), err)
		}
		h.gate.closed.Store(false)
		h.gate.release <- struct{}{}
		rows := h.waitAuditRows(t, before+1, 5*time.Second)
		if got := rows[len(rows)-1][audit.LogChangeID]; got != seen.Changes[0].ChangeID {
			t.Errorf("refresh recorded Change ID %s, the scan %s; want the same", got, seen.Changes[0].ChangeID)
		}
		if a := seen.Changes[0].Attribution; a.Source != audit.SourceWebhook || a.User != demo.Raj.Email {
			t.Errorf("scan attribution = %+v, want Raj by webhook", a)
		}
		sum := h.scan(t)
		if len(sum.Changes) != 0 || len(h.auditRows(t)) != before+1 {
			t.Errorf("after both: %d new changes, %d audit rows; want 0, %d", len(sum.Changes), len(h.auditRows(t)), before+1)
		}
	})

	t.Run("an edit made again after being reverted is logged again", func(t *testing.T) {
		before := len(h.auditRows(t))
		row := h.closedWeekRow(t, c)
		var ids []string
		for i, price := range []string{"5000.00", "650.00", "5000.00"} {
			h.srv.AdvanceClock(time.Second)
			h.editPrice(t, demo.Jesse, c, row, price)
			rows := h.waitAuditRows(t, before+i+1, 5*time.Second)
			last := rows[len(rows)-1]
			if last[audit.LogNewValue] != price || last[audit.LogAttribution] != string(audit.SourceWebhook) {
				t.Fatalf("edit %d: audit row %v, want the edit to %s by webhook", i+1, last, price)
			}
			ids = append(ids, last[audit.LogChangeID])
		}
		if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 3 {
			t.Errorf("Change IDs of the three edits = %v, want three different ids", ids)
		}
		// The scan sees the cell as the last refresh left it: nothing new.
		if sum := h.scan(t); len(sum.Changes) != 0 || len(h.auditRows(t)) != before+3 {
			t.Errorf("scan after the edits: %d new changes, %d audit rows; want 0, %d", len(sum.Changes), len(h.auditRows(t)), before+3)
		}
	})

	t.Run("a scan batch read before a refresh does not undo it", func(t *testing.T) {
		before := len(h.auditRows(t))
		row := h.closedWeekRow(t, a)
		h.srv.AdvanceClock(time.Second)
		h.editPrice(t, demo.Kim, a, row, "5000.00")
		h.waitAuditRows(t, before+1, 5*time.Second)
		// The scan reads the row now (5000.00) and its batch waits in the queue...
		page, _, err := h.client.GetSheet(ctx, a, smartsheet.GetSheetOptions{RowIDs: []int64{row},
			Include: []string{smartsheet.IncludeWriterInfo, smartsheet.IncludeRowPermalink}})
		if err != nil {
			t.Fatal(err)
		}
		b, _, _ := h.runner.PageBatch("late-run", page, audit.ScanWindow{Previous: h.srv.Now().Add(-time.Hour), Current: h.srv.Now()}, false, true)
		stale := []pipeline.Batch{b}
		// ...while a newer edit is refreshed by its webhook.
		h.srv.AdvanceClock(time.Second)
		h.editPrice(t, demo.Kim, a, row, "6000.00")
		h.waitAuditRows(t, before+2, 5*time.Second)
		for _, b := range stale {
			cs, _, err := h.runner.Analyze(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if i := slices.IndexFunc(cs, func(c audit.Change) bool { return c.RowID == row }); i >= 0 {
				t.Errorf("the stale batch recorded %+v, want nothing for row %d", cs[i], row)
			}
		}
		bl, err := h.store.Baselines(ctx, a, []int64{row})
		if err != nil || bl[row].Values[audit.ColPrice] != "6000.00" {
			t.Errorf("baseline after the stale batch = %v, %v; want price 6000.00", bl[row].Values, err)
		}
	})

	t.Run("webhook off: the next scan still finds the edit", func(t *testing.T) {
		before := len(h.auditRows(t))
		w := h.webhookOf(t, c)
		if err := h.srv.DisableWebhook(w.ID, smartsheet.WebhookDisabledScopeInaccessible); err != nil {
			t.Fatal(err)
		}
		h.flush(t)
		// The status callback was recorded (and logged as an alert).
		if st, ok, err := pipeline.LastWebhookStatus(ctx, h.store, w.ID); err != nil || !ok || st.Status != smartsheet.WebhookDisabledScopeInaccessible {
			t.Errorf("recorded status = %+v, %v, %v; want %s", st, ok, err, smartsheet.WebhookDisabledScopeInaccessible)
		}
		refreshes := h.listener.Refreshes()
		row := h.closedWeekRow(t, c)
		h.srv.AdvanceClock(time.Second)
		h.editPrice(t, demo.Dana, c, row, "1111.11")
		h.flush(t)
		if n := h.listener.Refreshes() - refreshes; n != 0 {
			t.Errorf("refreshes while the webhook is off = %d, want 0", n)
		}
		sum := h.scan(t) // also re-enables the webhook
		if len(sum.Changes) != 1 || sum.Changes[0].RowID != row || sum.Changes[0].Attribution.User != demo.Dana.Email ||
			sum.Changes[0].Attribution.Source == audit.SourceWebhook || !sum.Changes[0].Unauthorized() {
			t.Fatalf("scan changes = %+v; want Dana's edit, unauthorized, not by webhook", sum.Changes)
		}
		if n := len(h.auditRows(t)); n != before+1 {
			t.Errorf("audit rows = %d, want %d", n, before+1)
		}
		if got := h.webhookOf(t, c); got.Status != smartsheet.WebhookEnabled || got.ID != w.ID {
			t.Errorf("after the scan the webhook is %+v; want %d ENABLED again", got, w.ID)
		}
	})

	t.Run("disabled by failed callbacks, re-enabled by EnsureWebhooks", func(t *testing.T) {
		before := len(h.auditRows(t))
		if err := h.listener.Close(); err != nil {
			t.Fatal(err)
		}
		h.listener = nil
		missed := h.closedWeekRow(t, a)
		h.srv.AdvanceClock(time.Second)
		h.editPrice(t, demo.Jesse, a, missed, "2222.22")
		h.flush(t)
		w := h.webhookOf(t, a)
		if w.Status != smartsheet.WebhookDisabledCallbackFailed {
			t.Fatalf("webhook with the listener down = %s, want %s", w.Status, smartsheet.WebhookDisabledCallbackFailed)
		}
		h.listen(t)
		acts, err := h.runner.EnsureWebhooks(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.IndexFunc(acts, func(x pipeline.WebhookAction) bool { return x.WebhookID == w.ID }); i < 0 || !slices.Contains(acts[i].Actions, "enabled") {
			t.Errorf("EnsureWebhooks actions = %+v, want webhook %d enabled", acts, w.ID)
		}
		if got := h.webhookOf(t, a); got.Status != smartsheet.WebhookEnabled {
			t.Errorf("webhook after EnsureWebhooks = %s, want ENABLED", got.Status)
		}
		// Live again: a new edit arrives by webhook; the missed one comes with the scan.
		row := h.closedWeekRow(t, a)
		h.srv.AdvanceClock(time.Second)
		h.editPrice(t, demo.Kim, a, row, "3333.33")
		rows := h.waitAuditRows(t, before+1, 5*time.Second)
		if r := rows[len(rows)-1]; r[audit.LogAttribution] != string(audit.SourceWebhook) || r[audit.LogNewValue] != "3333.33" {
			t.Errorf("audit row after re-enable = %v, want Kim's edit by webhook", r)
		}
		sum := h.scan(t)
		if len(sum.Changes) != 1 || sum.Changes[0].RowID != missed {
			t.Errorf("scan after the outage = %+v, want the missed edit of row %d", sum.Changes, missed)
		}
	})

	t.Run("our own writes do not loop", func(t *testing.T) {
		refreshes, received := h.listener.Refreshes(), h.listener.Received()
		for _, w := range h.srv.Webhooks() {
			if w.ScopeObjectID == h.auditID {
				t.Errorf("webhook %d on the audit sheet", w.ID)
			}
		}
		row := h.closedWeekRow(t, b)
		// A write carrying our change agent: delivered, then dropped by the receiver.
		if _, err := h.srv.SetCell(smartsim.Edit{ChangeAgent: ownAgent}, b, row, h.setup.Columns[b][smartsim.ColTotalPrice], smartsheet.NumberValue("1.00")); err != nil {
			t.Fatal(err)
		}
		h.flush(t)
		time.Sleep(3 * listen.DefaultDebounce)
		if h.listener.Received() == received {
			t.Error("the simulator delivered no callback for our own write; the test proves nothing")
		}
		if n := h.listener.Refreshes() - refreshes; n != 0 {
			t.Errorf("refreshes after our own write = %d, want 0", n)
		}
	})
}

// BenchmarkEditToAuditRow measures the time from a user's edit in the
// simulator to its row on the audit sheet, through the simulator's
// debounced, signed callback (debounce 200 ms), the listener, the refresh
// worker and RefreshRows.
func BenchmarkEditToAuditRow(b *testing.B) {
	h := newHookStack(b, demo.Size{Sheets: 3, Rows: 2000, Weeks: 6})
	if _, err := h.runner.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	h.srv.AdvanceClock(time.Second)
	sheet := h.setup.Gen.SheetIDs[0]
	n := 0
	var total time.Duration
	for b.Loop() {
		row := h.closedWeekRow(b, sheet)
		start := time.Now()
		h.editPrice(b, demo.Kim, sheet, row, "55555.55")
		n++
		h.waitAuditRows(b, n, 10*time.Second)
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(n), "ms/edit")
}
