package dynamo_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/pipeline/storetest"
	"github.com/shopspring/decimal"
)

func TestStoreContract(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		storetest.Run(t, func(t *testing.T) pipeline.Store {
			return MustStore(t, api, dynamo.Options{Retention: dynamo.DefaultRetention})
		})
	})
}

func TestFanInContract(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		storetest.RunFanIn(t, func(t *testing.T) (pipeline.FanIn, func(time.Duration)) {
			var mu sync.Mutex
			now := time.Now()
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
			return MustStore(t, api, dynamo.Options{Retention: dynamo.DefaultRetention, Now: clock}), advance
		})
	})
}

func TestLeasesContract(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		storetest.RunLeases(t, func(t *testing.T) (pipeline.Leases, func(time.Duration)) {
			var mu sync.Mutex
			now := time.Now()
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
			return MustStore(t, api, dynamo.Options{Now: clock}), advance
		})
	})
}

var t0 = time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)

func testChange(id string) audit.Change {
	return audit.Change{ChangeID: id, RunID: "r", Kind: audit.KindValueChanged, SheetID: 9, RowID: 1, Column: "Quantity",
		OldValue: "1", NewValue: "2", Impact: decimal.RequireFromString("10"), Risk: audit.RiskLow, DetectedAt: t0}
}

func getRaw(t *testing.T, api testAPI, table, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := api.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &table, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Item == nil {
		t.Fatalf("no item %s/%s", pk, sk)
	}
	return out.Item
}

// TestTTL: change items carry ttl = recording time + retention, as a number;
// baselines never expire; retention 0 sets no ttl.
func TestTTL(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		ctx := context.Background()
		now := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
		for _, tt := range []struct {
			name      string
			retention time.Duration
			want      string
		}{
			{"default", dynamo.DefaultRetention, strconv.FormatInt(now.Add(400*24*time.Hour).Unix(), 10)},
			{"none", 0, ""},
		} {
			table := mustTable(t, api)
			s := dynamo.New(api, table, dynamo.Options{Retention: tt.retention, Now: func() time.Time { return now }})
			bl := audit.Baseline{SheetID: 9, RowID: 1, Values: map[string]string{"Quantity": "2"}, SeenAt: now}
			if _, err := s.Commit(ctx, pipeline.Commit{SheetID: 9, Changes: []audit.Change{testChange("x1")}, PutBaselines: []audit.Baseline{bl}}); err != nil {
				t.Fatal(err)
			}
			item := getRaw(t, api, table, "CHANGE#x1", "CHANGE")
			got := ""
			if n, ok := item["ttl"].(*types.AttributeValueMemberN); ok {
				got = n.Value
			} else if item["ttl"] != nil {
				t.Errorf("%s: ttl is %T, want a number", tt.name, item["ttl"])
			}
			if got != tt.want {
				t.Errorf("%s: change ttl = %q, want %q", tt.name, got, tt.want)
			}
			if _, ok := getRaw(t, api, table, "SHEET#9", "ROW#00000000000000000001")["ttl"]; ok {
				t.Errorf("%s: a baseline has a ttl", tt.name)
			}
		}
	})
}

// TestFanInRace: many batches, each delivered three times concurrently,
// with the Seal racing them: one claim, every batch counted once.
func TestFanInRace(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		ctx := context.Background()
		s := MustStore(t, api, dynamo.Options{})
		const batches = 30
		var claims atomic.Int32
		var wg sync.WaitGroup
		call := func(f func() (bool, error)) {
			defer wg.Done()
			c, err := f()
			if err != nil {
				t.Error(err)
			}
			if c {
				claims.Add(1)
			}
		}
		for dup := range 3 {
			for i := range batches {
				wg.Add(1)
				go call(func() (bool, error) { return s.BatchDone(ctx, "run", "b"+strconv.Itoa((i+dup*7)%batches)) })
				if dup == 1 && i == batches/2 {
					wg.Add(1)
					go call(func() (bool, error) { return s.Seal(ctx, "run", batches) })
				}
			}
		}
		wg.Wait()
		if n := claims.Load(); n != 1 {
			t.Errorf("%d claims, want exactly 1", n)
		}
		p, err := s.RunProgress(ctx, "run")
		if err != nil || p.Expected != batches || p.Done != batches || !p.Completed {
			t.Errorf("RunProgress() = %+v, %v; want %d of %d, completed", p, err, batches, batches)
		}
		// Redeliveries and a repeated Seal after the claim change nothing.
		if c, err := s.BatchDone(ctx, "run", "b3"); c || err != nil {
			t.Errorf("BatchDone(redelivered after claim) = %v, %v; want false, nil", c, err)
		}
		if c, err := s.Seal(ctx, "run", batches); c || err != nil {
			t.Errorf("Seal(again) = %v, %v; want false, nil", c, err)
		}
	})
}

func TestFanInErrors(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		ctx := context.Background()
		s := MustStore(t, api, dynamo.Options{})
		if _, err := s.RunProgress(ctx, "nope"); !errors.Is(err, dynamo.ErrUnknownRun) {
			t.Errorf("RunProgress(unknown) error = %v, want ErrUnknownRun", err)
		}
		if c, err := s.Seal(ctx, "r", 2); c || err != nil {
			t.Fatalf("Seal(2) = %v, %v", c, err)
		}
		if _, err := s.Seal(ctx, "r", 3); err == nil {
			t.Error("Seal with another count = nil error")
		}
		for _, b := range []string{"a", "b"} {
			if _, err := s.BatchDone(ctx, "r", b); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.BatchDone(ctx, "r", "c"); err == nil {
			t.Error("BatchDone of a batch beyond the sealed count = nil error")
		}
		// Three batches done, then sealed with two: refused, not claimed.
		for _, b := range []string{"a", "b", "c"} {
			if _, err := s.BatchDone(ctx, "r2", b); err != nil {
				t.Fatal(err)
			}
		}
		if c, err := s.Seal(ctx, "r2", 2); c || err == nil {
			t.Errorf("Seal(fewer than done) = %v, %v; want an error", c, err)
		}
	})
}

// TestCrashBeforeClaim: the handler that finished the run died between its
// count and its claim; the redelivery of its batch claims.
func TestCrashBeforeClaim(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		ctx := context.Background()
		table := mustTable(t, api)
		s := dynamo.New(api, table, dynamo.Options{})
		if _, err := s.Seal(ctx, "r", 1); err != nil {
			t.Fatal(err)
		}
		// The count of batch "only", as BatchDone's first step writes it, with no claim.
		_, err := api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{TableName: &table, Item: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: "RUN#r"}, "sk": &types.AttributeValueMemberS{Value: "BATCH#only"}}}},
			{Update: &types.Update{TableName: &table, Key: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: "RUN#r"}, "sk": &types.AttributeValueMemberS{Value: "FANIN"}},
				UpdateExpression:          aws.String("ADD done :one"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if c, err := s.BatchDone(ctx, "r", "only"); !c || err != nil {
			t.Errorf("BatchDone(redelivery after a crash) = %v, %v; want the claim", c, err)
		}
	})
}

// TestChangeItem: the raw change item has the documented index keys, before
// and after MarkWritten.
func TestChangeItem(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		ctx := context.Background()
		table := mustTable(t, api)
		rec := time.Date(2026, 11, 26, 6, 0, 0, 5, time.UTC)
		s := dynamo.New(api, table, dynamo.Options{Now: func() time.Time { return rec }})
		if _, err := s.Commit(ctx, pipeline.Commit{SheetID: 9, Changes: []audit.Change{testChange("x1")}}); err != nil {
			t.Fatal(err)
		}
		str := func(item map[string]types.AttributeValue, k string) string {
			v, _ := item[k].(*types.AttributeValueMemberS)
			if v == nil {
				return ""
			}
			return v.Value
		}
		item := getRaw(t, api, table, "CHANGE#x1", "CHANGE")
		if got := str(item, "gsi1pk") + " " + str(item, "gsi1sk"); got != "PENDING 2026-11-26T06:00:00.000000005Z#x1" {
			t.Errorf("pending index key = %q", got)
		}
		if err := s.MarkWritten(ctx, pipeline.WrittenIDs("x1")); err != nil {
			t.Fatal(err)
		}
		item = getRaw(t, api, table, "CHANGE#x1", "CHANGE")
		if got := str(item, "gsi1pk") + " " + str(item, "gsi1sk"); got != "DETECTED#2026-11 2026-11-25T15:00:00.000000000Z#x1" {
			t.Errorf("written index key = %q", got)
		}
	})
}
