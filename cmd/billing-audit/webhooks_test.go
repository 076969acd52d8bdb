package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/bolt"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// echoReceiver answers every verification challenge (and every callback)
// with 200: enough for the simulator to enable a webhook.
func echoReceiver(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Challenge string `json:"challenge"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		w.Header().Set("Smartsheet-Hook-Response", b.Challenge)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func writeEnv(t *testing.T, lines ...string) {
	t.Helper()
	if err := os.WriteFile(".env", []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestWebhooksCommands(t *testing.T) {
	cleanEnv(t)
	srv := smartsimtest.Start(t, smartsim.Options{})
	gen, err := srv.Populate(smartsim.GenConfig{Sheets: 2, Rows: 20, Weeks: 2})
	if err != nil {
		t.Fatal(err)
	}
	callback := echoReceiver(t).URL + "/webhooks/smartsheet"
	base := []string{"SMARTSHEET_API_TOKEN=tok", "SMARTSHEET_BASE_URL=" + srv.URL(), "STATE_DIR=state",
		"SOURCE_FOLDER_IDS=" + strconv.FormatInt(gen.FolderID, 10)}
	writeEnv(t, base...)

	if code, _, stderr := runCLI(t, "webhooks", "ensure"); code != 1 || !strings.Contains(stderr, "WEBHOOK_CALLBACK_URL") {
		t.Errorf("webhooks ensure without a callback = exit %d, %q; want 1 naming WEBHOOK_CALLBACK_URL", code, stderr)
	}
	if code, out, stderr := runCLI(t, "webhooks", "list"); code != 0 || !strings.Contains(out, "no webhooks") {
		t.Errorf("webhooks list, none = exit %d, %q %q", code, out, stderr)
	}

	writeEnv(t, append(base, "WEBHOOK_CALLBACK_URL="+callback)...)
	code, out, stderr := runCLI(t, "webhooks", "ensure")
	if code != 0 || strings.Count(out, "created, enabled") != 2 {
		t.Fatalf("webhooks ensure = exit %d\n%s\n%s\nwant 2 webhooks created and enabled", code, out, stderr)
	}
	code, out, _ = runCLI(t, "webhooks", "ensure")
	if code != 0 || strings.Count(out, "kept") != 2 {
		t.Errorf("webhooks ensure again = exit %d\n%s\nwant both kept", code, out)
	}
	hooks := srv.Webhooks()
	if len(hooks) != 2 {
		t.Fatalf("simulator holds %d webhooks, want 2", len(hooks))
	}
	// A stray (a second webhook of ours on a sheet) is deleted.
	api, err := smartsheet.New(smartsheet.Config{BaseURL: srv.URL(), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	stray, err := api.CreateWebhook(context.Background(), smartsheet.Webhook{Name: "dup", CallbackURL: callback, ScopeObjectID: gen.SheetIDs[0]})
	if err != nil {
		t.Fatal(err)
	}
	if code, out, _ = runCLI(t, "webhooks", "ensure"); code != 0 || !strings.Contains(out, strconv.FormatInt(stray.ID, 10)+"  deleted") {
		t.Errorf("webhooks ensure with a stray = exit %d\n%s\nwant %d deleted", code, out, stray.ID)
	}
	if err := srv.DisableWebhook(hooks[0].ID, smartsheet.WebhookDisabledCallbackFailed); err != nil {
		t.Fatal(err)
	}

	code, out, _ = runCLI(t, "webhooks", "list")
	if code != 0 || !strings.Contains(out, "SHEET") || strings.Count(out, callback) != 2 {
		t.Fatalf("webhooks list = exit %d\n%s", code, out)
	}
	for _, w := range hooks {
		want := regexp.MustCompile(strconv.FormatInt(w.ScopeObjectID, 10) + `\s+` + strconv.FormatInt(w.ID, 10) + `\s+(ENABLED\s+true|DISABLED_CALLBACK_FAILED\s+false)\s+stored\s+` + regexp.QuoteMeta(callback))
		if !want.MatchString(out) {
			t.Errorf("webhooks list lacks sheet %d webhook %d, status, enabled, stored secret, callback:\n%s", w.ScopeObjectID, w.ID, out)
		}
	}
	if code, out, _ = runCLI(t, "webhooks", "ensure"); code != 0 || !strings.Contains(out, "enabled") {
		t.Errorf("webhooks ensure after DISABLED_CALLBACK_FAILED = exit %d\n%s\nwant it enabled", code, out)
	}

	id := strconv.FormatInt(hooks[1].ID, 10)
	if code, out, stderr = runCLI(t, "webhooks", "reset-secret", id); code != 0 || !strings.Contains(out, "previous one is accepted until") {
		t.Fatalf("webhooks reset-secret = exit %d\n%s\n%s", code, out, stderr)
	}
	if code, _, _ = runCLI(t, "webhooks", "reset-secret", "x"); code != 1 {
		t.Errorf("webhooks reset-secret x = exit %d, want 1", code)
	}
	if code, _, _ = runCLI(t, "webhooks", "frob"); code != 2 {
		t.Errorf("webhooks frob = exit %d, want 2", code)
	}
	store, err := bolt.Open("state")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	set, ok, err := store.SecretSet(context.Background(), hooks[1].ID)
	cur := srv.Webhooks()
	var now string
	for _, w := range cur {
		if w.ID == hooks[1].ID {
			now = w.SharedSecret
		}
	}
	if err != nil || !ok || set.Current != now || set.Previous != hooks[1].SharedSecret || time.Until(set.PreviousUntil) < 9*time.Minute {
		t.Errorf("stored secrets after reset = %+v, %v, %v; want current = Smartsheet's new one, previous = the old one for 10m", set, ok, err)
	}
}

// TestListenCommand runs `billing-audit listen` as an operator would: it
// registers the webhooks, and an edit reaches the audit sheet by itself.
func TestListenCommand(t *testing.T) {
	cleanEnv(t)
	srv := smartsimtest.Start(t, smartsim.Options{Webhooks: smartsim.WebhookOptions{Debounce: 100 * time.Millisecond}})
	gen, err := srv.Populate(smartsim.GenConfig{Sheets: 1, Rows: 20, Weeks: 2})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	writeEnv(t, "SMARTSHEET_API_TOKEN=tok", "SMARTSHEET_BASE_URL="+srv.URL(), "STATE_DIR=state",
		"SOURCE_SHEET_IDS="+strconv.FormatInt(gen.SheetIDs[0], 10))
	if code, _, stderr := runCLI(t, "setup"); code != 0 {
		t.Fatalf("setup: %s", stderr)
	}
	if code, _, stderr := runCLI(t, "run"); code != 0 {
		t.Fatalf("baseline run: %s", stderr)
	}
	srv.AdvanceClock(time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var code int
	var out syncWriter
	wg.Go(func() { code = run(ctx, []string{"listen", "--addr", addr, "--scan-every", "300ms"}, &out, &out) })
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "listening on") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	hooks := srv.Webhooks()
	if len(hooks) != 1 || hooks[0].Status != smartsheet.WebhookEnabled || hooks[0].CallbackURL != "http://"+addr+"/webhooks/smartsheet" {
		cancel()
		wg.Wait()
		t.Fatalf("webhooks while listening = %+v\n%s", hooks, out.String())
	}
	sh, err := srv.Sheet(gen.SheetIDs[0])
	if err != nil {
		t.Fatal(err)
	}
	price := sh.Column(smartsim.ColTotalPrice).ID
	if _, err := srv.SetCell(smartsim.Edit{User: smartsheet.User{Name: "Kim Lee", Email: "kim@example.com"}}, sh.ID, sh.Rows[0].ID, price, smartsheet.NumberValue("777.77")); err != nil {
		t.Fatal(err)
	}
	var auditRows int
	for deadline = time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, id := range srv.SheetIDs() {
			if s, _ := srv.Sheet(id); s.Name == "Billing Audit Log" {
				auditRows = len(s.Rows)
			}
		}
		if auditRows > 0 {
			break
		}
	}
	// Another command beside the listener is told who holds the store, at
	// once, instead of waiting on bbolt's lock.
	start := time.Now()
	runCode, _, runErr := runCLI(t, "run")
	if runCode != 1 || !strings.Contains(runErr, "`billing-audit listen` (pid ") || !strings.Contains(runErr, "on "+addr) {
		t.Errorf("run beside listen: exit %d, stderr %q; want 1 and a message naming the listener", runCode, runErr)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("run beside listen took %s to fail, want about a second", took)
	}
	// The schedule keeps firing: one audit at start, then every 300 ms.
	for deadline = time.Now().Add(5 * time.Second); strings.Count(out.String(), "scheduled audit at") < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if n := strings.Count(out.String(), "scheduled audit at"); n < 3 {
		t.Errorf("listen ran %d scheduled audits, want at least 3 (at start, then every 300ms):\n%s", n, out.String())
	}
	if strings.Contains(out.String(), "scheduled audit failed") {
		t.Errorf("a scheduled audit failed:\n%s", out.String())
	}
	if _, err := os.Stat("state/listen.pid"); !os.IsNotExist(err) {
		t.Errorf("state/listen.pid after listen stopped: %v, want it removed", err)
	}
	if auditRows != 1 || code != 0 {
		t.Errorf("listen: %d audit rows, exit %d; want 1 row, exit 0\n%s", auditRows, code, out.String())
	}
	if _, err := os.Stat("state/" + bolt.FileName); err != nil {
		t.Error(err)
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestRunChecksTheAuditSheetFirst: with an audit sheet that is gone (or
// never shared), `run` stops before reading any source sheet and says what to
// check, instead of scanning everything and failing at the end.
func TestRunChecksTheAuditSheetFirst(t *testing.T) {
	cleanEnv(t)
	srv := smartsimtest.Start(t, smartsim.Options{})
	gen, err := srv.Populate(smartsim.GenConfig{Sheets: 2, Rows: 20, Weeks: 2})
	if err != nil {
		t.Fatal(err)
	}
	writeEnv(t, "SMARTSHEET_API_TOKEN=tok", "SMARTSHEET_BASE_URL="+srv.URL(), "STATE_DIR=state",
		"SOURCE_FOLDER_IDS="+strconv.FormatInt(gen.FolderID, 10))
	if code, _, stderr := runCLI(t, "setup"); code != 0 {
		t.Fatalf("setup: %s", stderr)
	}
	t.Setenv("AUDIT_SHEET_ID", "1234567890")
	srv.ResetCounters()
	code, _, stderr := runCLI(t, "run")
	if code != 1 || !strings.Contains(stderr, "audit sheet 1234567890 was not found or is not shared with the token's user") ||
		!strings.Contains(stderr, "check AUDIT_SHEET_ID") {
		t.Errorf("run with a missing audit sheet = exit %d, stderr %q; want 1 and what to check", code, stderr)
	}
	// One sheet read: the audit sheet's check. No source sheet, no folder.
	if n, f := srv.Counter(smartsim.EndpointGetSheet).Calls, srv.Counter(smartsim.EndpointGetFolder).Calls; n != 1 || f != 0 {
		t.Errorf("run read %d sheets and %d folders, want 1 (the audit sheet's check) and 0", n, f)
	}
}
