package localchain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/local/localchain"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// hookDebounce is the simulator's webhook debounce in these tests (Smartsheet's is about a minute).
const hookDebounce = 300 * time.Millisecond

// hookChain is the chain with the real-time path: the simulator delivering signed, debounced callbacks to the
// HTTP API stand-in, the webhook function, WebhookQueue polled continuously into analyze.
type hookChain struct {
	chain    *localchain.Chain
	srv      *smartsim.Server
	setup    *demo.Setup
	auditID  int64
	schedule []byte
	logs     *lockedWriter
	used     map[int64]bool
}

func mustHookChain(tb testing.TB, size demo.Size) *hookChain {
	tb.Helper()
	stack := MustStack(tb)
	ctx := context.Background()
	cfg, err := localchain.AWSConfig(ctx, stack.vars)
	if err != nil {
		tb.Fatal(err)
	}
	srv := smartsimtest.Start(tb, smartsim.Options{Webhooks: smartsim.WebhookOptions{Debounce: hookDebounce,
		RetryDelays: []time.Duration{20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond}}})
	setup, err := demo.Prepare(srv, size)
	if err != nil {
		tb.Fatal(err)
	}
	ddb := dynamo.New(dynamodb.NewFromConfig(cfg), stack.vars["AUDIT_TABLE"], dynamo.Options{})
	auditID, _, err := pipeline.EnsureAuditSheet(ctx, mustClient(tb, srv), ddb, 0, auditName)
	if err != nil {
		tb.Fatal(err)
	}
	if err := localchain.PutToken(ctx, secretsmanager.NewFromConfig(cfg), stack.vars["SMARTSHEET_TOKEN_SECRET_ARN"], token); err != nil {
		tb.Fatal(err)
	}
	vars := map[string]string{}
	for k, v := range stack.vars {
		vars[k] = v
	}
	vars["SMARTSHEET_BASE_URL"] = srv.URL()
	vars["AUDIT_SHEET_ID"] = strconv.FormatInt(auditID, 10)
	vars["SOURCE_FOLDER_IDS"] = strconv.FormatInt(setup.Gen.FolderID, 10)
	vars["SOURCE_SHEET_IDS"] = ""
	h := &hookChain{srv: srv, setup: setup, auditID: auditID, logs: &lockedWriter{w: new(bytes.Buffer)}, used: map[int64]bool{}}
	h.chain, err = localchain.Start(ctx, localchain.Options{Env: vars, Bootstraps: stack.bootstrap, Emulator: stack.emulator,
		Webhooks: true, Log: slog.New(slog.NewTextHandler(h.logs, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.chain.Stop)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("pollers and API:\n%s\nwebhook:\n%s\nanalyze:\n%s\nscan:\n%s", tail(h.logs.String()),
				tail(h.chain.Webhook.Logs()), tail(h.chain.Analyze.Logs()), tail(h.chain.Scan.Logs()))
		}
	})
	// WebhookQueue → analyze, polling all the time as the event-source mapping does.
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); h.chain.Refreshes.Run(runCtx) }()
	tb.Cleanup(func() { cancel(); wg.Wait() })
	if h.schedule, err = os.ReadFile(filepath.Join(moduleRoot, "events/scan/schedule.json")); err != nil {
		tb.Fatal(err)
	}
	return h
}

// scan invokes the scan through the chain and drains the queues it fed.
func (h *hookChain) scan(tb testing.TB) scanResponse {
	tb.Helper()
	ctx := context.Background()
	out, err := h.chain.InvokeScan(ctx, h.schedule)
	if err != nil {
		tb.Fatalf("invoke scan: %v", err)
	}
	var r scanResponse
	if err := json.Unmarshal(out, &r); err != nil || r.RunID == "" {
		tb.Fatalf("scan answered %s (%v), want a run id", out, err)
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := h.chain.Drain(dctx); err != nil {
		tb.Fatal(err)
	}
	return r
}

// closedWeekRow picks an unused closed-week row of a sheet with a price.
func (h *hookChain) closedWeekRow(tb testing.TB, sheetID int64) int64 {
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
func (h *hookChain) editPrice(tb testing.TB, user smartsheet.User, sheetID, rowID int64, price string) {
	tb.Helper()
	if _, err := h.srv.SetCell(smartsim.Edit{User: user}, sheetID, rowID, h.setup.Columns[sheetID][smartsim.ColTotalPrice], smartsheet.NumberValue(price)); err != nil {
		tb.Fatal(err)
	}
}

// auditRows is the audit sheet's rows, column title → text.
func (h *hookChain) auditRows(tb testing.TB) []map[string]string {
	tb.Helper()
	sh, err := h.srv.Sheet(h.auditID)
	if err != nil {
		tb.Fatal(err)
	}
	titles := map[int64]string{}
	for _, c := range sh.Columns {
		titles[c.ID] = c.Title
	}
	out := make([]map[string]string, 0, len(sh.Rows))
	for _, r := range sh.Rows {
		m := map[string]string{}
		for _, c := range r.Cells {
			if v := c.Value.Text(); v != "" {
				m[titles[c.ColumnID]] = v
			}
		}
		out = append(out, m)
	}
	return out
}

// changeRow is the audit row of a change to value (each edit here writes a price of its own), if there is one.
func changeRow(rows []map[string]string, value string) (map[string]string, bool) {
	for _, r := range rows {
		if r[audit.LogNewValue] == value {
			return r, true
		}
	}
	return nil, false
}

// waitChangeRow polls the audit sheet until the change's row is there.
func (h *hookChain) waitChangeRow(tb testing.TB, value string, within time.Duration) map[string]string {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		if r, ok := changeRow(h.auditRows(tb), value); ok {
			return r
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no audit row of the change to %s after %v", value, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *hookChain) webhookOf(tb testing.TB, sheetID int64) smartsheet.Webhook {
	tb.Helper()
	for _, w := range h.srv.Webhooks() {
		if w.ScopeObjectID == sheetID {
			return w
		}
	}
	tb.Fatalf("no webhook on sheet %d", sheetID)
	return smartsheet.Webhook{}
}

// nextSecond sleeps into the next whole second.
func nextSecond() {
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second).Sub(now))
}

func (h *hookChain) flush(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.FlushWebhooks(ctx); err != nil {
		tb.Fatal(err)
	}
}

// TestWebhookThroughChain is the real-time path through the serverless chain: the scan (under the emulator)
// registers the webhooks with the HTTP API stand-in as callback; a user's edit in the simulator comes back as a
// signed, debounced callback → HTTP API → webhook function (nonces, records, refresh message) → WebhookQueue →
// analyze (RefreshRows) → audit row, attributed by the webhook, within seconds and without a cell-history call.
// With the webhook off, the next scan finds the edit and re-enables it.
func TestWebhookThroughChain(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	began := time.Now()
	h := mustHookChain(t, demo.Size{Sheets: 3, Rows: 200, Weeks: 4})
	a, c := h.setup.Gen.SheetIDs[0], h.setup.Gen.SheetIDs[2]
	t.Logf("stack and chain ready in %s", time.Since(began).Round(time.Millisecond))

	// The baseline through the chain registers one enabled webhook per source sheet, calling the HTTP API.
	phase := time.Now()
	base := h.scan(t)
	t.Logf("baseline: run %s, %d batches, through the chain in %s", base.RunID, base.Batches, time.Since(phase).Round(time.Millisecond))
	hooks := h.srv.Webhooks()
	if len(hooks) != len(h.setup.Gen.SheetIDs) {
		t.Fatalf("webhooks after the baseline = %d, want %d (one per source sheet)", len(hooks), len(h.setup.Gen.SheetIDs))
	}
	for _, w := range hooks {
		if w.Status != smartsheet.WebhookEnabled || w.CallbackURL != h.chain.API.RouteURL() || w.ScopeObjectID == h.auditID {
			t.Errorf("webhook %d of sheet %d: %s calling %s; want ENABLED calling %s", w.ID, w.ScopeObjectID, w.Status, w.CallbackURL, h.chain.API.RouteURL())
		}
	}
	// The route is keyed as in AWS: junk at the bare path never reaches the function.
	if !strings.HasPrefix(h.chain.API.RouteURL(), h.chain.API.URL()+"/webhooks/smartsheet/") {
		t.Errorf("callback URL %s, want %s/webhooks/smartsheet/<key>", h.chain.API.RouteURL(), h.chain.API.URL())
	}
	before := h.chain.API.Requests()
	res, err := http.Post(h.chain.API.URL()+"/webhooks/smartsheet", "application/json", strings.NewReader(`{"challenge":"junk"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusNotFound || h.chain.API.Requests() != before {
		t.Errorf("POST to the bare /webhooks/smartsheet: %d with %d calls of the function, want 404 and none", res.StatusCode, h.chain.API.Requests()-before)
	}
	if t.Failed() {
		t.FailNow()
	}
	// Edits from now on are in a later second than the baseline (Smartsheet keeps whole seconds). The functions run
	// on real time, so the simulator's clock must not be advanced: an edit "in the future" falls outside the
	// attribution window of the analyze function.
	nextSecond()

	t.Run("edit reaches the audit sheet by webhook", func(t *testing.T) {
		row := h.closedWeekRow(t, a)
		history := h.srv.Counter(smartsim.EndpointCellHistory).Calls
		calls := h.chain.API.Requests()
		editAt := time.Now()
		h.editPrice(t, demo.Kim, a, row, "98765.43")
		r := h.waitChangeRow(t, "98765.43", 10*time.Second)
		latency := time.Since(editAt)
		t.Logf("edit to audit row through the chain: %v (simulator debounce %v)", latency.Round(time.Millisecond), hookDebounce)
		if latency >= 5*time.Second {
			t.Errorf("edit reached the audit sheet after %v, want < 5s", latency)
		}
		if r[audit.LogChangedBy] != demo.Kim.Email || r[audit.LogAttribution] != string(audit.SourceWebhook) ||
			r[audit.LogUnauthorized] != "YES" || r[audit.LogKind] != string(audit.KindValueChanged) ||
			r[audit.LogColumn] != smartsim.ColTotalPrice {
			t.Errorf("audit row = %v; want Kim's closed-week price edit, by webhook, UNAUTHORIZED", r)
		}
		if n := h.srv.Counter(smartsim.EndpointCellHistory).Calls - history; n != 0 {
			t.Errorf("cell-history calls = %d, want 0", n)
		}
		if n := h.chain.API.Requests() - calls; n != 1 {
			t.Errorf("HTTP API requests for the edit = %d, want 1 callback", n)
		}
	})

	t.Run("webhook off: not in real time, found by the next scan, re-enabled", func(t *testing.T) {
		before := len(h.auditRows(t))
		w := h.webhookOf(t, c)
		off := h.chain.Webhook.LogLen()
		if err := h.srv.DisableWebhook(w.ID, smartsheet.WebhookDisabledScopeInaccessible); err != nil {
			t.Fatal(err)
		}
		h.flush(t)
		// The status callback went through the chain and raised the alert the template's metric filter counts.
		if !strings.Contains(h.chain.Webhook.Logs()[off:], `"alert":"`+pipeline.WebhookDisabledAlert+`"`) {
			t.Errorf("webhook function logged no %s alert for the status callback", pipeline.WebhookDisabledAlert)
		}
		calls := h.chain.API.Requests()
		row := h.closedWeekRow(t, c)
		h.editPrice(t, demo.Dana, c, row, "1111.11")
		h.flush(t)
		time.Sleep(2 * time.Second) // the refresh poller keeps polling: nothing may arrive
		if n := h.chain.API.Requests() - calls; n != 0 {
			t.Errorf("HTTP API requests while the webhook is off = %d, want 0", n)
		}
		if _, ok := changeRow(h.auditRows(t), "1111.11"); ok {
			t.Fatal("the edit reached the audit sheet with its webhook off")
		}
		h.scan(t)
		r, ok := changeRow(h.auditRows(t), "1111.11")
		if !ok {
			t.Fatalf("the scan did not find Dana's edit of row %d", row)
		}
		if r[audit.LogChangedBy] != demo.Dana.Email || r[audit.LogAttribution] == string(audit.SourceWebhook) || r[audit.LogUnauthorized] != "YES" {
			t.Errorf("audit row = %v; want Dana's edit, UNAUTHORIZED, not by webhook", r)
		}
		if n := len(h.auditRows(t)); n != before+1 {
			t.Errorf("change rows on the audit sheet after the scan = %d, want %d (the webhook's edit once, Dana's once)", n, before+1)
		}
		if got := h.webhookOf(t, c); got.Status != smartsheet.WebhookEnabled || got.ID != w.ID {
			t.Errorf("after the scan the webhook is %d %s; want %d ENABLED again", got.ID, got.Status, w.ID)
		}
	})
	t.Logf("webhook through the chain in %s", time.Since(began).Round(time.Millisecond))
}

// BenchmarkWebhookEditToAuditRow measures a user's edit in the simulator to its row on the audit sheet through the
// serverless chain: debounced (300 ms) signed callback → HTTP API stand-in → webhook function under the emulator
// (DynamoDB nonce and records, SQS) → WebhookQueue poller → analyze under the emulator (RefreshRows) → audit row.
//
//	go test -run '^$' -bench BenchmarkWebhookEditToAuditRow -benchtime 5x ./shared/local/localchain
func BenchmarkWebhookEditToAuditRow(b *testing.B) {
	h := mustHookChain(b, demo.Size{Sheets: 3, Rows: 200, Weeks: 4})
	h.scan(b)
	sheet := h.setup.Gen.SheetIDs[0]
	n := 0
	var total, worst time.Duration
	nextSecond()
	for b.Loop() {
		row := h.closedWeekRow(b, sheet)
		price := fmt.Sprintf("%d.55", 50000+n)
		start := time.Now()
		h.editPrice(b, demo.Kim, sheet, row, price)
		h.waitChangeRow(b, price, 10*time.Second)
		d := time.Since(start)
		total, worst, n = total+d, max(worst, d), n+1
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(n), "ms/edit")
	b.ReportMetric(float64(worst.Milliseconds()), "max-ms")
	b.ReportMetric(float64(hookDebounce.Milliseconds()), "debounce-ms")
	b.ReportMetric(0, "ns/op")
}
