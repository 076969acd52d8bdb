package dynamo_test

import (
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/local/chaos"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/pipeline/storetest"
)

// TestStoreContractUnderFaults runs the store's contracts (changes recorded
// once, baselines, the ledger, runs, sheet work, meta, alerts; the fan-in's
// transactions; the leases) with one DynamoDB request in ten faulted inside
// the SDK: throttled, a server error, applied but its answer lost, or — for a
// transaction — cancelled by a conflict. The SDK retries what it retries;
// the store must absorb the rest, above all a conditional write that meets
// its own lost first attempt, without recording anything twice or losing it.
func TestStoreContractUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault contract: not in -short")
	}
	forEachEmulator(t, func(t *testing.T, e *emulator) {
		faults := chaos.NewDynamoDBFaults(0.1, 11)
		var api testAPI = dynamodb.NewFromConfig(clientConfig(), func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(e.endpoint)
			o.DisableValidateResponseChecksum = e.noCRC
			// Six attempts, so a run of faults does not end an operation the contract
			// expects to finish; short back-offs, so the test takes seconds.
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts, so.MaxBackoff = 6, 20*time.Millisecond
			})
		}, faults.Option)
		if e.serialize {
			api = &serialized{api: api}
		}
		opts := func(now func() time.Time) dynamo.Options {
			return dynamo.Options{Retention: dynamo.DefaultRetention, Backoff: 5 * time.Millisecond, Now: now}
		}
		storetest.Run(t, func(t *testing.T) pipeline.Store { return MustStore(t, api, opts(nil)) })
		storetest.RunFanIn(t, func(t *testing.T) (pipeline.FanIn, func(time.Duration)) {
			clock, advance := testClock()
			return MustStore(t, api, opts(clock)), advance
		})
		storetest.RunLeases(t, func(t *testing.T) (pipeline.Leases, func(time.Duration)) {
			clock, advance := testClock()
			return MustStore(t, api, opts(clock)), advance
		})
		calls, by := faults.Counts()
		t.Logf("%s: %d requests, faults %v", e.name, calls, by)
		for _, k := range []chaos.Kind{chaos.Throttled, chaos.ServerError, chaos.LostResponse, chaos.TransactionConflict} {
			if by[k] == 0 {
				t.Errorf("faults %v over %d requests: no %s made", by, calls, k)
			}
		}
	})
}

// testClock is a settable clock for the contracts that age leases and
// fan-ins.
func testClock() (now func() time.Time, advance func(time.Duration)) {
	var mu sync.Mutex
	t := time.Now()
	return func() time.Time { mu.Lock(); defer mu.Unlock(); return t },
		func(d time.Duration) { mu.Lock(); defer mu.Unlock(); t = t.Add(d) }
}
