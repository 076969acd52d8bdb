package secrets_test

import (
	"context"
	"strconv"
	"strings"
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
	// secret is stored: every one is found, then unknown ids stop reloading.
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
	if n := sm.gets - gets; n != 1 {
		t.Errorf("unknown ids reloaded %d times, want 1 (MissBurst 4, three used: 9, 10, 11)", n)
	}
	if err := w.DeleteSecretSet(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := w.SecretSet(ctx, 7); ok {
		t.Error("deleted webhook 7 still has secrets")
	}
}
