package secrets_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/fieldaudit/billing-audit/shared/aws/secrets"
	"github.com/fieldaudit/billing-audit/shared/webhook"
	"github.com/google/go-cmp/cmp"
)

// fakeSM is an in-memory Secrets Manager holding one secret.
type fakeSM struct {
	value string
	gets  int
}

func (f *fakeSM) GetSecretValue(_ context.Context, _ *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.gets++
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(f.value)}, nil
}

func (f *fakeSM) PutSecretValue(_ context.Context, in *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	f.value = *in.SecretString
	return &secretsmanager.PutSecretValueOutput{}, nil
}

func TestParseWebhookSecrets(t *testing.T) {
	until := time.Date(2026, 11, 25, 15, 10, 0, 0, time.UTC)
	tests := []struct {
		name, raw string
		want      map[int64]webhook.SecretSet
		err       bool
	}{
		{"template placeholder", `{"placeholder":"x1y2"}`, map[int64]webhook.SecretSet{}, false},
		{"plain string", `{"12":"s1"}`, map[int64]webhook.SecretSet{12: {Current: "s1"}}, false},
		{"rotation", `{"12":{"current":"s2","previous":"s1","previousUntil":"2026-11-25T15:10:00Z"}}`,
			map[int64]webhook.SecretSet{12: {Current: "s2", Previous: "s1", PreviousUntil: until}}, false},
		{"with its sheet", `{"12":{"current":"s2","sheetId":77}}`, map[int64]webhook.SecretSet{12: {Current: "s2", SheetID: 77}}, false},
		{"not an object", `["s1"]`, nil, true},
		{"bad entry", `{"12":42}`, nil, true},
	}
	for _, tt := range tests {
		got, err := secrets.ParseWebhookSecrets([]byte(tt.raw))
		if (err != nil) != tt.err || !cmp.Equal(got, tt.want) {
			t.Errorf("%s: ParseWebhookSecrets(%s) = %v, %v; want %v (error %v)", tt.name, tt.raw, got, err, tt.want, tt.err)
		}
		if err != nil && strings.Contains(err.Error(), "s1") {
			t.Errorf("%s: the error quotes a secret: %v", tt.name, err)
		}
	}
}

func TestWebhookSecretsCacheAndWrite(t *testing.T) {
	ctx := context.Background()
	sm := &fakeSM{value: `{"placeholder":"p"}`}
	w := secrets.NewWebhookSecrets(sm, "arn:secret")
	if err := w.PutSecretSet(ctx, 7, webhook.SecretSet{Current: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := w.PutSecretSet(ctx, 8, webhook.SecretSet{Current: "b"}); err != nil {
		t.Fatal(err)
	}
	if sm.value != `{"7":{"current":"a"},"8":{"current":"b"}}` {
		t.Errorf("stored JSON = %s", sm.value)
	}
	gets := sm.gets
	for range 3 {
		if set, ok, err := w.SecretSet(ctx, 7); err != nil || !ok || set.Current != "a" {
			t.Fatalf("SecretSet(7) = %+v, %v, %v", set, ok, err)
		}
	}
	if sm.gets != gets {
		t.Errorf("cached reads called Secrets Manager %d times, want 0", sm.gets-gets)
	}
	// Another writer (the scan) registers webhook 9: a miss reloads, once per MissReload.
	sm.value = `{"7":{"current":"a"},"9":"c"}`
	w.MissReload = 0
	if set, ok, err := w.SecretSet(ctx, 9); err != nil || !ok || set.Current != "c" {
		t.Errorf("SecretSet(9) after another writer = %+v, %v, %v; want c", set, ok, err)
	}
	// The scan registers webhooks back to back, each verified right after its
	// secret is stored: every one is found (and costs no token), then unknown
	// ids stop reloading once the bucket is spent.
	w.MissReload, w.MissBurst = time.Hour, 4
	for i, id := range []int64{10, 11} {
		sm.value = strings.TrimSuffix(sm.value, "}") + `,"` + strconv.FormatInt(id, 10) + `":"s"}`
		if _, ok, err := w.SecretSet(ctx, id); err != nil || !ok {
			t.Errorf("SecretSet(%d), registered %d after another = %v, %v; want found", id, i, ok, err)
		}
	}
	gets = sm.gets
	for id := int64(100); id < 105; id++ {
		if _, ok, _ := w.SecretSet(ctx, id); ok {
			t.Errorf("SecretSet(%d) found an unknown webhook", id)
		}
	}
	if n := sm.gets - gets; n != 4 {
		t.Errorf("unknown ids reloaded %d times, want 4 (MissBurst 4; 10 and 11 were found, so took none)", n)
	}
	if err := w.DeleteSecretSet(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := w.SecretSet(ctx, 7); ok {
		t.Error("deleted webhook 7 still has secrets")
	}
}

// funcSM is a function-field fake of the Secrets Manager API.
type funcSM struct {
	GetSecretValueFunc func(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValueFunc func(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
}

func (f funcSM) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return f.GetSecretValueFunc(ctx, in, optFns...)
}

func (f funcSM) PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	return f.PutSecretValueFunc(ctx, in, optFns...)
}

// TestWebhookSecretsUnknownIDs: ids the cache does not know reload the
// secret at most DefaultMissBurst times at once, then once per
// DefaultMissReload; the others are answered "not ours" (the receiver's 403)
// from the cache. A reload that finds the id (a webhook the scan registered
// since the last read) costs nothing, so back-to-back registrations all pass
// their verification.
func TestWebhookSecretsUnknownIDs(t *testing.T) {
	type step struct {
		after    time.Duration // clock advance before the step
		register []int64       // webhooks another writer stores before the step
		ask      []int64
		wantLoad int     // reloads the step causes
		wantOK   []int64 // the asked ids found
	}
	junk := func(n int) []int64 {
		ids := make([]int64, n)
		for i := range ids {
			ids[i] = 900 + int64(i)
		}
		return ids
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "a flood of unknown ids: the burst, then one per interval", steps: []step{
			{ask: junk(100), wantLoad: secrets.DefaultMissBurst},
			{after: secrets.DefaultMissReload / 2, ask: junk(100), wantLoad: 0},
			{after: secrets.DefaultMissReload / 2, ask: junk(100), wantLoad: 1},
			{after: secrets.DefaultMissReload, ask: junk(100), wantLoad: 1},
		}},
		{name: "webhooks registered back to back are all found", steps: []step{
			{register: []int64{21}, ask: []int64{21}, wantLoad: 1, wantOK: []int64{21}},
			{register: []int64{22}, ask: []int64{22}, wantLoad: 1, wantOK: []int64{22}},
			{register: []int64{23}, ask: []int64{23}, wantLoad: 1, wantOK: []int64{23}},
			{register: []int64{24}, ask: []int64{24}, wantLoad: 1, wantOK: []int64{24}},
			{register: []int64{25}, ask: []int64{25, 25, 7}, wantLoad: 1, wantOK: []int64{25, 25, 7}},
			{ask: junk(10), wantLoad: secrets.DefaultMissBurst},
		}},
		{name: "a flood spends the bucket: a new webhook waits for the next token", steps: []step{
			{ask: junk(100), wantLoad: secrets.DefaultMissBurst},
			{register: []int64{21}, ask: []int64{21}, wantLoad: 0},
			{after: secrets.DefaultMissReload, ask: []int64{21}, wantLoad: 1, wantOK: []int64{21}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			var mu sync.Mutex
			stored, loads := map[string]string{"7": "a"}, 0
			sm := funcSM{GetSecretValueFunc: func(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
				mu.Lock()
				defer mu.Unlock()
				loads++
				b, err := json.Marshal(stored)
				return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(string(b))}, err
			}}
			clock := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
			w := secrets.NewWebhookSecrets(sm, "arn:secret")
			w.Clock = func() time.Time { return clock }
			if _, ok, err := w.SecretSet(ctx, 7); err != nil || !ok {
				t.Fatalf("SecretSet(7) = %v, %v; want found", ok, err)
			}
			for i, st := range tt.steps {
				clock = clock.Add(st.after)
				mu.Lock()
				for _, id := range st.register {
					stored[strconv.FormatInt(id, 10)] = "s"
				}
				before := loads
				mu.Unlock()
				var found []int64
				for _, id := range st.ask {
					_, ok, err := w.SecretSet(ctx, id)
					if err != nil {
						t.Fatalf("step %d: SecretSet(%d): %v", i, id, err)
					}
					if ok {
						found = append(found, id)
					}
				}
				if got := loads - before; got != st.wantLoad || !cmp.Equal(found, st.wantOK) {
					t.Errorf("step %d: SecretSet(%d ids) loaded %d times and found %v; want %d, %v", i, len(st.ask), got, found, st.wantLoad, st.wantOK)
				}
			}
		})
	}
}

// TestWebhookSecretsReceiverFlood: through the receiver, a flood of calls
// naming made-up webhooks is answered 403, reading the secret only
// DefaultMissBurst times.
func TestWebhookSecretsReceiverFlood(t *testing.T) {
	ctx := context.Background()
	loads := 0
	sm := funcSM{GetSecretValueFunc: func(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
		loads++
		return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(`{"7":"a"}`)}, nil
	}}
	w := secrets.NewWebhookSecrets(sm, "arn:secret")
	at := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
	w.Clock = func() time.Time { return at }
	// Nonces and Sink stay nil: an unknown webhook must not reach them.
	r := &webhook.Receiver{Secrets: webhook.StoredSecrets(w, w.Clock), Clock: w.Clock}
	if _, ok, err := w.SecretSet(ctx, 7); err != nil || !ok {
		t.Fatalf("SecretSet(7) = %v, %v; want found", ok, err)
	}
	for id := range int64(200) {
		body := fmt.Appendf(nil, `{"webhookId":%d,"nonce":"n","timestamp":"2026-11-25T15:00:00Z","scopeObjectId":1}`, 1000+id)
		if got := r.Handle(ctx, webhook.Request{Body: body}); got.Status != 403 {
			t.Fatalf("Handle(webhook %d) = %d %s, want 403", 1000+id, got.Status, got.Body)
		}
	}
	if n := loads - 1; n != secrets.DefaultMissBurst {
		t.Errorf("200 calls for unknown webhooks read the secret %d times, want %d", n, secrets.DefaultMissBurst)
	}
}

// TestWebhookSecretsLoadFailure: while Secrets Manager fails, a read's error
// answers every call for LoadRetry (the receiver's 500, which Smartsheet
// retries) instead of each call reading again; after it, one call reads.
func TestWebhookSecretsLoadFailure(t *testing.T) {
	ctx := context.Background()
	failing, loads := true, 0
	sm := funcSM{GetSecretValueFunc: func(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
		loads++
		if failing {
			return nil, errors.New("ServiceUnavailable")
		}
		return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(`{"7":"a"}`)}, nil
	}}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	w := secrets.NewWebhookSecrets(sm, "arn:secret")
	w.Clock = func() time.Time { return now }
	tests := []struct {
		after    time.Duration
		fail     bool
		calls    int
		wantLoad int
		wantErr  bool
	}{
		{fail: true, calls: 50, wantLoad: 1, wantErr: true},
		{after: secrets.DefaultLoadRetry / 2, fail: true, calls: 50, wantLoad: 0, wantErr: true},
		{after: secrets.DefaultLoadRetry, fail: true, calls: 50, wantLoad: 1, wantErr: true},
		{after: secrets.DefaultLoadRetry, fail: false, calls: 50, wantLoad: 1},
	}
	for i, tt := range tests {
		now = now.Add(tt.after)
		failing, loads = tt.fail, 0
		for range tt.calls {
			_, ok, err := w.SecretSet(ctx, 7)
			if (err != nil) != tt.wantErr || ok == tt.wantErr {
				t.Fatalf("step %d: SecretSet(7) = %v, %v; want error %v", i, ok, err, tt.wantErr)
			}
		}
		if loads != tt.wantLoad {
			t.Errorf("step %d: %d calls read the secret %d times, want %d", i, tt.calls, loads, tt.wantLoad)
		}
	}
}

// TestWebhookSecretsLoadErrorEnds: a write that reads the secret again ends
// the failure's window (the scan's EnsureWebhooks mixes reads and writes on
// one instance), and a caller whose own context ended leaves no error for
// the others.
func TestWebhookSecretsLoadErrorEnds(t *testing.T) {
	tests := []struct {
		name  string
		heal  func(ctx context.Context, w *secrets.WebhookSecrets) error // between the failure and the next read
		ctxOf func() (context.Context, context.CancelFunc)               // the failing call's context
	}{
		{name: "a successful write", heal: func(ctx context.Context, w *secrets.WebhookSecrets) error {
			return w.PutSecretSet(ctx, 8, webhook.SecretSet{Current: "b"})
		}, ctxOf: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{name: "the failing caller's context was cancelled", ctxOf: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, func() {}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failing := true
			stored := `{"7":"a"}`
			sm := funcSM{
				GetSecretValueFunc: func(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
					if failing {
						return nil, errors.New("ServiceUnavailable")
					}
					return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(stored)}, nil
				},
				PutSecretValueFunc: func(_ context.Context, in *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
					stored = aws.ToString(in.SecretString)
					return &secretsmanager.PutSecretValueOutput{}, nil
				},
			}
			now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
			w := secrets.NewWebhookSecrets(sm, "arn:secret")
			w.Clock = func() time.Time { return now }
			ctx, cancel := tt.ctxOf()
			defer cancel()
			if _, _, err := w.SecretSet(ctx, 7); err == nil {
				t.Fatal("SecretSet during the outage: no error")
			}
			failing = false
			if tt.heal != nil {
				if err := tt.heal(context.Background(), w); err != nil {
					t.Fatalf("heal: %v", err)
				}
			}
			// An id the cache does not hold reaches the failure check.
			if _, ok, err := w.SecretSet(context.Background(), 9); err != nil || ok {
				t.Errorf("SecretSet(9) after it = %v, %v; want not found and no error (within LoadRetry of the failure)", ok, err)
			}
		})
	}
}
