package dynamo_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/webhook"
	"github.com/google/go-cmp/cmp"
)

func (s *serialized) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return lock(s, s.api.(dynamo.WebhookAPI).DeleteItem, ctx, in, o)
}

// webhookStore returns a WebhookStore on a fresh table; every test client
// (the SDK's, or it serialized for moto) has DeleteItem.
func webhookStore(t *testing.T, api testAPI, now func() time.Time) (*dynamo.WebhookStore, string) {
	t.Helper()
	wapi, ok := api.(dynamo.WebhookAPI)
	if !ok {
		t.Fatalf("%T lacks the WebhookAPI methods", api)
	}
	table := mustTable(t, api)
	return dynamo.NewWebhookStore(wapi, table, dynamo.WebhookOptions{Now: now}), table
}

func TestWebhookNonces(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		ctx := context.Background()
		s, table := webhookStore(t, api, nil)
		at := time.Now().UTC()
		if seen, err := s.Seen(ctx, "n1", at); err != nil || seen {
			t.Fatalf("Seen(n1) first = %v, %v; want false", seen, err)
		}
		if seen, err := s.Seen(ctx, "n1", at.Add(time.Minute)); err != nil || !seen {
			t.Fatalf("Seen(n1) again = %v, %v; want true", seen, err)
		}
		item := getRaw(t, api, table, "NONCE#n1", "NONCE")
		if ttl, ok := item["ttl"]; !ok || attrN(t, ttl) != at.Add(dynamo.DefaultNonceTTL).Unix() {
			t.Errorf("nonce ttl = %v, want %d", item["ttl"], at.Add(dynamo.DefaultNonceTTL).Unix())
		}
		// Past its ttl (not yet deleted by DynamoDB), a nonce is new again.
		if seen, err := s.Seen(ctx, "n1", at.Add(dynamo.DefaultNonceTTL+time.Minute)); err != nil || seen {
			t.Errorf("Seen(n1) after its ttl = %v, %v; want false", seen, err)
		}
		if err := s.Forget(ctx, "n1"); err != nil {
			t.Fatal(err)
		}
		if seen, err := s.Seen(ctx, "n1", at); err != nil || seen {
			t.Errorf("Seen(n1) after Forget = %v, %v; want false", seen, err)
		}
		// Concurrent deliveries of one nonce: exactly one is new.
		var fresh atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if seen, err := s.Seen(ctx, "race", at); err == nil && !seen {
					fresh.Add(1)
				}
			})
		}
		wg.Wait()
		if fresh.Load() != 1 {
			t.Errorf("concurrent Seen(race): %d saw it first, want 1", fresh.Load())
		}
	})
}

func TestWebhookRecords(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		ctx := context.Background()
		now := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
		s, table := webhookStore(t, api, func() time.Time { return now })
		t0 := now.Add(-time.Hour)
		rec := func(row, col int64, at time.Duration, user int64, ev string) webhook.Record {
			return webhook.Record{SheetID: 9, RowID: row, ColumnID: col, UserID: user, Time: t0.Add(at), EventType: ev}
		}
		recs := []webhook.Record{
			rec(1, 100, 0, 7, "updated"), rec(1, 100, time.Minute, 8, "updated"), rec(1, 100, 2*time.Minute, 7, "updated"),
			rec(1, 200, time.Minute, 7, "updated"), rec(2, 100, time.Minute, 7, "updated"), rec(1, 0, 3*time.Minute, 7, "deleted"),
			rec(1, 100, time.Minute, 8, "updated"), // twice in one callback
		}
		for i := 0; i < 30; i++ { // more than one BatchWriteItem
			recs = append(recs, rec(3, 100, time.Duration(i)*time.Second, 7, "updated"))
		}
		if err := s.PutRecords(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if err := s.PutRecords(ctx, recs[:2]); err != nil { // a retried callback
			t.Fatal(err)
		}
		tests := []struct {
			name     string
			row, col int64
			from, to time.Time
			want     []webhook.Record
		}{
			{"one cell, open window", 1, 100, time.Time{}, time.Time{}, []webhook.Record{recs[0], recs[1], recs[2]}},
			{"from is exclusive", 1, 100, t0, time.Time{}, []webhook.Record{recs[1], recs[2]}},
			{"to is inclusive", 1, 100, t0, t0.Add(time.Minute), []webhook.Record{recs[1]}},
			{"another column", 1, 200, time.Time{}, time.Time{}, []webhook.Record{recs[3]}},
			{"the row's records", 1, 0, time.Time{}, time.Time{}, []webhook.Record{recs[5]}},
			{"nothing", 4, 100, time.Time{}, time.Time{}, nil},
		}
		for _, tt := range tests {
			got, err := s.Records(ctx, 9, tt.row, tt.col, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s: Records(9, %d, %d) differ (-want +got):\n%s", tt.name, tt.row, tt.col, diff)
			}
		}
		if got, _ := s.Records(ctx, 9, 3, 100, time.Time{}, time.Time{}); len(got) != 30 {
			t.Errorf("Records of row 3 = %d, want 30", len(got))
		}
		item := getRaw(t, api, table, "WH#9#1", "00000000000000000100#"+t0.Format("2006-01-02T15:04:05.000000000Z")+"#7#updated")
		if attrN(t, item["ttl"]) != now.Add(dynamo.DefaultRecordTTL).Unix() {
			t.Errorf("record ttl = %v, want %d", item["ttl"], now.Add(dynamo.DefaultRecordTTL).Unix())
		}
	})
}

func attrN(t *testing.T, av types.AttributeValue) int64 {
	t.Helper()
	v, ok := av.(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("attribute %v is not a number", av)
	}
	i, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// countingQueries counts the Query calls of a WebhookAPI.
type countingQueries struct {
	dynamo.WebhookAPI
	n atomic.Int32
}

func (c *countingQueries) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.n.Add(1)
	return c.WebhookAPI.Query(ctx, in, o...)
}

// A batch's webhook attributor queries no records of a sheet whose newest
// record is not after a change's window start (or that has none), and still
// finds the records that are.
func TestWebhookNewestRecordSkipsLookups(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		ctx := context.Background()
		counted := &countingQueries{WebhookAPI: api.(dynamo.WebhookAPI)}
		table := mustTable(t, api)
		s := dynamo.NewWebhookStore(counted, table, dynamo.WebhookOptions{})
		t0 := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
		if _, ok, err := s.NewestRecord(ctx, 9); err != nil || ok {
			t.Fatalf("NewestRecord(9) before any record = %v, %v; want none", ok, err)
		}
		newer := webhook.Record{SheetID: 9, RowID: 1, ColumnID: 100, UserID: 7, User: "ann@example.com", Time: t0.Add(time.Minute), EventType: "updated"}
		older := webhook.Record{SheetID: 9, RowID: 2, ColumnID: 100, UserID: 8, User: "bob@example.com", Time: t0, EventType: "updated"}
		if err := s.PutRecords(ctx, []webhook.Record{newer}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutRecords(ctx, []webhook.Record{older}); err != nil { // late, out of order: the newest stays
			t.Fatal(err)
		}
		if got, ok, err := s.NewestRecord(ctx, 9); err != nil || !ok || !got.Equal(newer.Time) {
			t.Fatalf("NewestRecord(9) = %v, %v, %v; want %v", got, ok, err, newer.Time)
		}
		change := func(sheet, row int64, ws time.Time) *audit.Change {
			return &audit.Change{Kind: audit.KindValueChanged, SheetID: sheet, RowID: row, ColumnID: 100,
				Attribution: audit.Attribution{WindowStart: ws, WindowEnd: t0.Add(time.Hour)}}
		}
		tests := []struct {
			name    string
			c       *audit.Change
			want    string
			queries int32
		}{
			{"record after the window start", change(9, 1, t0), "ann@example.com", 1},
			{"older record in its window", change(9, 2, t0.Add(-time.Minute)), "bob@example.com", 1},
			{"window starts at the newest", change(9, 1, newer.Time), "", 0},
			{"window starts after the newest", change(9, 1, t0.Add(30*time.Minute)), "", 0},
			{"sheet without records", change(10, 1, time.Time{}), "", 0},
		}
		for _, tt := range tests {
			at := webhook.NewAttributor(s).(audit.BatchAttributor).ForBatch()
			before := counted.n.Load()
			got, ok, err := at.Attribute(ctx, tt.c)
			if err != nil || ok != (tt.want != "") || got.User != tt.want {
				t.Errorf("%s: Attribute = %q, %v, %v; want %q", tt.name, got.User, ok, err, tt.want)
			}
			if q := counted.n.Load() - before; q != tt.queries {
				t.Errorf("%s: %d Query calls, want %d", tt.name, q, tt.queries)
			}
		}
		// 100 changes of one batch, all before the newest record's time but
		// after it as window start: no Query at all.
		at := webhook.NewAttributor(s).(audit.BatchAttributor).ForBatch()
		before := counted.n.Load()
		for row := range int64(100) {
			if _, ok, err := at.Attribute(ctx, change(9, row, newer.Time)); ok || err != nil {
				t.Fatalf("Attribute(row %d) = %v, %v; want nothing", row, ok, err)
			}
		}
		if q := counted.n.Load() - before; q != 0 {
			t.Errorf("batch of 100 skipped changes: %d Query calls, want 0", q)
		}
	})
}
