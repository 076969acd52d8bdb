package smartsim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// secretStore is an in-memory webhook.Secrets: the webhooks we registered.
type secretStore struct {
	mu sync.Mutex
	m  map[int64][]string
}

func (s *secretStore) Secrets(_ context.Context, id int64) (webhook.Hook, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	return webhook.Hook{Secrets: v}, ok, nil
}

func (s *secretStore) set(id int64, secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = secrets
}

// nonceStore is an in-memory webhook.Nonces.
type nonceStore struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (n *nonceStore) Seen(_ context.Context, nonce string, _ time.Time) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen[nonce] {
		return true, nil
	}
	n.seen[nonce] = true
	return false, nil
}

func (n *nonceStore) Forget(_ context.Context, nonce string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.seen, nonce)
	return nil
}

// recordStore is the sink and the record lookup: it keeps attributed records.
type recordStore struct {
	users   webhook.Users
	mu      sync.Mutex
	recs    []webhook.Record
	arrived []time.Time
	status  []string
}

func (r *recordStore) Accept(ctx context.Context, cb webhook.Callback) error {
	recs := cb.Records()
	if err := webhook.ResolveUsers(ctx, r.users, recs); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, recs...)
	for range recs {
		r.arrived = append(r.arrived, time.Now())
	}
	if cb.NewStatus != "" {
		r.status = append(r.status, cb.NewStatus)
	}
	return nil
}

func (r *recordStore) Records(_ context.Context, sheetID, rowID, columnID int64, from, to time.Time) ([]webhook.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []webhook.Record
	for _, x := range r.recs {
		if x.SheetID == sheetID && x.RowID == rowID && x.ColumnID == columnID && x.Time.After(from) && (to.IsZero() || !x.Time.After(to)) {
			out = append(out, x)
		}
	}
	return out, nil
}

func (r *recordStore) snapshot() ([]webhook.Record, []time.Time, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]webhook.Record(nil), r.recs...), append([]time.Time(nil), r.arrived...), append([]string(nil), r.status...)
}

// apiUsers resolves user ids with GET /users/{id} on the simulator.
type apiUsers struct{ base string }

func (a apiUsers) User(ctx context.Context, id int64) (string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/users/%d", a.base, id), nil)
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Authorization", "Bearer test-token")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return "", "", fmt.Errorf("GET /users/%d: %s", id, res.Status)
	}
	var u struct{ Email, Name string }
	if err := json.NewDecoder(res.Body).Decode(&u); err != nil {
		return "", "", err
	}
	return u.Email, u.Name, nil
}

// receiverServer adapts net/http to webhook.Request/Response.
func receiverServer(tb testing.TB, r *webhook.Receiver) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, webhook.DefaultMaxBody+1))
		if err != nil && len(body) <= webhook.DefaultMaxBody {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		headers := make(map[string]string, len(req.Header))
		for k := range req.Header {
			headers[k] = req.Header.Get(k)
		}
		res := r.Handle(req.Context(), webhook.Request{Headers: headers, Body: body})
		for k, v := range res.Headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(res.Status)
		_, _ = w.Write(res.Body)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

func TestWebhookEndToEnd(t *testing.T) {
	const debounce = 200 * time.Millisecond
	s := smartsimtest.Start(t, smartsim.Options{Webhooks: smartsim.WebhookOptions{Debounce: debounce}})
	sh, err := s.CreateSheet(smartsheet.Sheet{Name: "Billing", Columns: []smartsheet.Column{
		{Title: "Work Request", Type: smartsheet.TypeTextNumber, Primary: true},
		{Title: "Price", Type: smartsheet.TypeTextNumber},
		{Title: "Notes", Type: smartsheet.TypeTextNumber},
	}}, 0, 0, smartsim.Edit{})
	if err != nil {
		t.Fatal(err)
	}
	colPrice, colNotes := sh.Columns[1].ID, sh.Columns[2].ID
	rows, err := s.AddRows(smartsim.Edit{ChangeAgent: "billing-audit"}, sh.ID, []smartsheet.Row{{Cells: []smartsheet.Cell{
		{ColumnID: sh.Columns[0].ID, Value: smartsheet.StringValue("WR-1")}, {ColumnID: colPrice, Value: smartsheet.IntValue(1200)},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	rowID := rows[0].ID

	secrets := &secretStore{m: map[int64][]string{}}
	store := &recordStore{users: apiUsers{base: s.URL()}}
	rcv := &webhook.Receiver{Secrets: secrets, Nonces: &nonceStore{seen: map[string]bool{}}, Sink: store,
		OwnChangeAgent: "billing-audit",
		Columns:        func(int64) map[int64]bool { return map[int64]bool{colPrice: true} }}
	srv := receiverServer(t, rcv)

	ctx := context.Background()
	api, err := smartsheet.New(smartsheet.Config{BaseURL: s.URL(), Token: "test-token", ChangeAgent: "billing-audit"})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := api.CreateWebhook(ctx, smartsheet.Webhook{Name: "audit", CallbackURL: srv.URL + "/webhook", ScopeObjectID: sh.ID})
	if err != nil {
		t.Fatal(err)
	}
	// Before we know the webhook, its verification is refused.
	if got, err := api.SetWebhookEnabled(ctx, wh.ID, true); err != nil || got.Status != smartsheet.WebhookDisabledVerificationFailed {
		t.Fatalf("enable an unregistered webhook = %+v, %v, want %s", got, err, smartsheet.WebhookDisabledVerificationFailed)
	}
	secrets.set(wh.ID, wh.SharedSecret)
	if got, err := api.SetWebhookEnabled(ctx, wh.ID, true); err != nil || got.Status != smartsheet.WebhookEnabled {
		t.Fatalf("enable = %+v, %v, want ENABLED", got, err)
	}

	kim := smartsheet.User{Name: "Kim Ortiz", Email: "kim@example.com"}
	editAt := time.Now()
	if _, err := s.SetCell(smartsim.Edit{User: kim}, sh.ID, rowID, colPrice, smartsheet.IntValue(1500)); err != nil {
		t.Fatal(err)
	}
	// Noise the receiver drops: an untracked column, and our own write.
	if _, err := s.SetCell(smartsim.Edit{User: kim}, sh.ID, rowID, colNotes, smartsheet.StringValue("late")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetCell(smartsim.Edit{ChangeAgent: "billing-audit"}, sh.ID, rowID, colPrice, smartsheet.IntValue(1500)); err != nil {
		t.Fatal(err)
	}
	flushCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.FlushWebhooks(flushCtx); err != nil {
		t.Fatal(err)
	}
	recs, arrived, _ := store.snapshot()
	if len(recs) != 1 {
		t.Fatalf("records = %+v, want 1 (Kim's price edit)", recs)
	}
	r := recs[0]
	if r.SheetID != sh.ID || r.RowID != rowID || r.ColumnID != colPrice || r.User != kim.Email || r.Name != kim.Name || r.ChangeAgent != "" {
		t.Errorf("record = %+v, want Kim's edit of Price", r)
	}
	if lag := arrived[0].Sub(editAt); lag > debounce+500*time.Millisecond {
		t.Errorf("record arrived %v after the edit, want within the debounce %v (+ slack)", lag, debounce)
	}
	if st := s.WebhookStats(wh.ID); st.Callbacks != 1 || st.Failures != 0 {
		t.Errorf("WebhookStats = %+v, want 1 callback, no failure", st)
	}

	// The audit later detects the price change and asks who made it.
	change := &audit.Change{Kind: audit.KindValueChanged, SheetID: sh.ID, RowID: rowID, ColumnID: colPrice,
		Attribution: audit.Attribution{Source: audit.SourceUnknown, WindowStart: editAt.Add(-time.Hour), WindowEnd: editAt.Add(time.Hour)}}
	if err := audit.AttributeChain(ctx, change, webhook.NewAttributor(store, colPrice)); err != nil {
		t.Fatal(err)
	}
	if a := change.Attribution; a.Source != audit.SourceWebhook || a.User != kim.Email || a.Time == nil || !a.Time.Equal(r.Time) {
		t.Errorf("Attribution = %+v, want %s from the webhook at %v", a, kim.Email, r.Time)
	}

	// Rotation: the receiver accepts the new secret (and the previous one).
	newSecret, err := api.ResetSharedSecret(ctx, wh.ID)
	if err != nil {
		t.Fatal(err)
	}
	secrets.set(wh.ID, newSecret, wh.SharedSecret)
	if _, err := s.SetCell(smartsim.Edit{User: kim}, sh.ID, rowID, colPrice, smartsheet.IntValue(1600)); err != nil {
		t.Fatal(err)
	}
	// A status change reaches the sink as a signal.
	if err := s.FlushWebhooks(flushCtx); err != nil {
		t.Fatal(err)
	}
	if err := s.DisableWebhook(wh.ID, "DISABLED_SCOPE_INACCESSIBLE"); err != nil {
		t.Fatal(err)
	}
	if err := s.FlushWebhooks(flushCtx); err != nil {
		t.Fatal(err)
	}
	recs, _, status := store.snapshot()
	if len(recs) != 2 || len(status) != 1 || status[0] != "DISABLED_SCOPE_INACCESSIBLE" {
		t.Errorf("after rotation and disable: records %d, statuses %q; want 2, [DISABLED_SCOPE_INACCESSIBLE]", len(recs), status)
	}
	if st := s.WebhookStats(wh.ID); st.Failures != 0 {
		t.Errorf("WebhookStats = %+v, want no failure", st)
	}
}
