package bolt_test

import (
	"context"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/bolt"
	"github.com/fieldaudit/billing-audit/shared/webhook"
	"github.com/google/go-cmp/cmp"
)

func mustStore(t *testing.T) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestWebhookSecrets(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t)
	if _, ok, err := s.SecretSet(ctx, 5); ok || err != nil {
		t.Fatalf("SecretSet of an unknown webhook = %v, %v; want not found", ok, err)
	}
	until := time.Date(2026, 11, 25, 15, 10, 0, 0, time.UTC)
	want := webhook.SecretSet{Current: "new", Previous: "old", PreviousUntil: until, SheetID: 9}
	if err := s.PutSecretSet(ctx, 5, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.SecretSet(ctx, 5)
	if err != nil || !ok || !cmp.Equal(got, want) {
		t.Errorf("SecretSet(5) = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	// Through the receiver's port: the previous secret only until its time.
	port := webhook.StoredSecrets(s, func() time.Time { return until.Add(-time.Second) })
	if hook, ok, _ := port.Secrets(ctx, 5); !ok || !cmp.Equal(hook, webhook.Hook{Secrets: []string{"new", "old"}, SheetID: 9}) {
		t.Errorf("Secrets before the overlap ends = %+v, want [new old] of sheet 9", hook)
	}
	port = webhook.StoredSecrets(s, func() time.Time { return until })
	if hook, ok, _ := port.Secrets(ctx, 5); !ok || !cmp.Equal(hook, webhook.Hook{Secrets: []string{"new"}, SheetID: 9}) {
		t.Errorf("Secrets after the overlap = %+v, want [new] of sheet 9", hook)
	}
	if err := s.DeleteSecretSet(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := port.Secrets(ctx, 5); ok {
		t.Error("a deleted webhook is still known")
	}
}

func TestWebhookNonces(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t)
	at := time.Now()
	steps := []struct {
		name string
		op   func() (bool, error)
		want bool
	}{
		{"first", func() (bool, error) { return s.Seen(ctx, "n", at) }, false},
		{"replay", func() (bool, error) { return s.Seen(ctx, "n", at.Add(time.Minute)) }, true},
		{"after its ttl", func() (bool, error) { return s.Seen(ctx, "n", at.Add(bolt.NonceTTL+time.Minute)) }, false},
		{"forgotten", func() (bool, error) { return false, s.Forget(ctx, "n") }, false},
		{"after Forget", func() (bool, error) { return s.Seen(ctx, "n", at) }, false},
	}
	for _, st := range steps {
		if got, err := st.op(); err != nil || got != st.want {
			t.Errorf("%s: Seen = %v, %v; want %v", st.name, got, err, st.want)
		}
	}
}

func TestWebhookRecords(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t)
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	rec := func(row, col int64, at time.Duration, ev string) webhook.Record {
		return webhook.Record{SheetID: 9, RowID: row, ColumnID: col, UserID: 7, Time: t0.Add(at), EventType: ev}
	}
	old := webhook.Record{SheetID: 9, RowID: 1, ColumnID: 100, UserID: 7, Time: t0.Add(-bolt.RecordTTL), EventType: "updated"}
	if err := s.PutRecords(ctx, []webhook.Record{old}); err != nil {
		t.Fatal(err)
	}
	recs := []webhook.Record{rec(1, 100, 0, "updated"), rec(1, 100, time.Minute, "updated"), rec(1, 200, 0, "updated"),
		rec(1, 0, time.Minute, "deleted"), rec(1, 100, time.Minute, "updated")}
	if err := s.PutRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		col      int64
		from, to time.Time
		want     []webhook.Record
	}{
		{"one cell, old record expired, duplicate once", 100, time.Time{}, time.Time{}, recs[:2]},
		{"from exclusive, to inclusive", 100, t0, t0.Add(time.Minute), recs[1:2]},
		{"another column", 200, time.Time{}, time.Time{}, recs[2:3]},
		{"the row's records", 0, time.Time{}, time.Time{}, recs[3:4]},
	}
	for _, tt := range tests {
		got, err := s.Records(ctx, 9, 1, tt.col, tt.from, tt.to)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: Records differ (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestWebhookNewestRecord(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t)
	t0 := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	if _, ok, err := s.NewestRecord(ctx, 9); ok || err != nil {
		t.Fatalf("NewestRecord(9) before any record = %v, %v; want none", ok, err)
	}
	steps := []struct {
		name string
		recs []webhook.Record
		want time.Time
	}{
		{"first callback: its newest", []webhook.Record{{SheetID: 9, RowID: 1, Time: t0}, {SheetID: 9, RowID: 2, Time: t0.Add(time.Minute)}}, t0.Add(time.Minute)},
		{"a late, older callback keeps it", []webhook.Record{{SheetID: 9, RowID: 3, Time: t0.Add(-time.Hour)}}, t0.Add(time.Minute)},
		{"a newer one raises it", []webhook.Record{{SheetID: 9, RowID: 1, Time: t0.Add(time.Hour)}}, t0.Add(time.Hour)},
	}
	for _, st := range steps {
		if err := s.PutRecords(ctx, st.recs); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.NewestRecord(ctx, 9); err != nil || !ok || !got.Equal(st.want) {
			t.Errorf("%s: NewestRecord(9) = %v, %v, %v; want %v", st.name, got, ok, err, st.want)
		}
	}
	if _, ok, err := s.NewestRecord(ctx, 10); ok || err != nil {
		t.Errorf("NewestRecord(10) of another sheet = %v, %v; want none", ok, err)
	}
}
