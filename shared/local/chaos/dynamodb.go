// Package chaos injects the faults a real AWS account produces now and then
// into the SDK clients of the tests and the soak: throttling, server errors,
// answers lost after the request was applied, transaction conflicts. The
// faults are made inside the SDK's middleware stack, after its retryer, so
// the client sees them exactly as it would see DynamoDB's: the SDK retries
// what it retries, and the rest reaches the adapter's own handling.
package chaos

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// A Kind of DynamoDB fault.
type Kind string

// The faults, each as DynamoDB answers it.
const (
	// Throttled: ProvisionedThroughputExceededException, not applied. The
	// SDK retries it with back-off.
	Throttled Kind = "throttled"
	// ServerError: HTTP 500 InternalServerError, not applied. The SDK
	// retries it.
	ServerError Kind = "server-error"
	// LostResponse: the request is applied, then the answer is lost (HTTP
	// 500). The SDK sends it again, so a conditional write meets itself.
	LostResponse Kind = "lost-response"
	// TransactionConflict: a TransactWriteItems cancelled with reason
	// TransactionConflict (another transaction on an item), not applied.
	// The SDK does not retry it; the adapter must.
	TransactionConflict Kind = "transaction-conflict"
)

// DynamoDBFaults faults a share of a DynamoDB client's requests, seeded so a
// run can be replayed. Its zero value faults nothing.
type DynamoDBFaults struct {
	// Rate is the share of requests faulted, in [0, 1].
	Rate float64
	// Kinds are drawn from evenly (TransactionConflict only for
	// TransactWriteItems); empty: all of them.
	Kinds []Kind

	mu     sync.Mutex
	rng    *rand.Rand
	calls  int
	counts map[Kind]int
}

// NewDynamoDBFaults faults rate of the requests with kinds (all when none),
// drawn from seed.
func NewDynamoDBFaults(rate float64, seed uint64, kinds ...Kind) *DynamoDBFaults {
	return &DynamoDBFaults{Rate: rate, Kinds: kinds, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
}

// Option adds the faults to a DynamoDB client:
// dynamodb.NewFromConfig(cfg, faults.Option).
func (f *DynamoDBFaults) Option(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		// A transaction's size, for its cancellation reasons (one per item,
		// as DynamoDB gives them).
		if err := s.Initialize.Add(middleware.InitializeMiddlewareFunc("chaos.TransactionSize", transactionSize), middleware.Before); err != nil {
			return err
		}
		// After the retryer (the end of Finalize): each attempt may fault.
		return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("chaos.DynamoDBFaults", f.handle), middleware.After)
	})
}

// Counts returns the requests seen and the faults made, by kind.
func (f *DynamoDBFaults) Counts() (calls int, faults map[Kind]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[Kind]int, len(f.counts))
	for k, v := range f.counts {
		out[k] = v
	}
	return f.calls, out
}

// Pick draws the fault of one request of operation op ("" for none), for
// those who make the fault themselves (the chain's DynamoDB proxy, on the
// wire).
func (f *DynamoDBFaults) Pick(op string) Kind { return f.pick(op) }

// pick draws the fault of one request ("" for none).
func (f *DynamoDBFaults) pick(op string) Kind {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.rng == nil || f.rng.Float64() >= f.Rate {
		return ""
	}
	kinds := f.Kinds
	if len(kinds) == 0 {
		kinds = []Kind{Throttled, ServerError, LostResponse, TransactionConflict}
	}
	var can []Kind
	for _, k := range kinds {
		if k != TransactionConflict || op == "TransactWriteItems" {
			can = append(can, k)
		}
	}
	if len(can) == 0 {
		return ""
	}
	k := can[f.rng.IntN(len(can))]
	if f.counts == nil {
		f.counts = map[Kind]int{}
	}
	f.counts[k]++
	return k
}

func (f *DynamoDBFaults) handle(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
	middleware.FinalizeOutput, middleware.Metadata, error) {
	switch f.pick(middleware.GetOperationName(ctx)) {
	case Throttled:
		return middleware.FinalizeOutput{}, middleware.Metadata{}, &types.ProvisionedThroughputExceededException{
			Message: aws.String("chaos: the level of configured provisioned throughput for the table was exceeded")}
	case ServerError:
		return middleware.FinalizeOutput{}, middleware.Metadata{}, serverError()
	case TransactionConflict:
		return middleware.FinalizeOutput{}, middleware.Metadata{}, f.conflict(ctx)
	case LostResponse:
		out, md, err := next.HandleFinalize(ctx, in)
		if err != nil {
			return out, md, err
		}
		return middleware.FinalizeOutput{}, md, serverError()
	default:
		return next.HandleFinalize(ctx, in)
	}
}

type txSizeKey struct{}

func transactionSize(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (
	middleware.InitializeOutput, middleware.Metadata, error) {
	if tx, ok := in.Parameters.(*dynamodb.TransactWriteItemsInput); ok {
		ctx = middleware.WithStackValue(ctx, txSizeKey{}, len(tx.TransactItems))
	}
	return next.HandleInitialize(ctx, in)
}

// conflict is a TransactionCanceledException as DynamoDB gives it: a reason
// per item, None but for one item in conflict.
func (f *DynamoDBFaults) conflict(ctx context.Context) error {
	n, _ := middleware.GetStackValue(ctx, txSizeKey{}).(int)
	n = max(n, 1)
	f.mu.Lock()
	hit := f.rng.IntN(n)
	f.mu.Unlock()
	reasons := make([]types.CancellationReason, n)
	codes := make([]string, n)
	for i := range reasons {
		codes[i] = "None"
		if i == hit {
			codes[i] = "TransactionConflict"
		}
		reasons[i] = types.CancellationReason{Code: aws.String(codes[i])}
	}
	reasons[hit].Message = aws.String("Transaction is ongoing for the item")
	return &types.TransactionCanceledException{
		Message:             aws.String("chaos: Transaction cancelled, please refer cancellation reasons for specific reasons [" + strings.Join(codes, ", ") + "]"),
		CancellationReasons: reasons,
	}
}

// serverError is DynamoDB's HTTP 500 as the SDK sees it: a response error the
// retryer retries.
func serverError() error {
	return &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: http.StatusInternalServerError, Header: http.Header{}}},
		Err:      errors.New("chaos: InternalServerError"),
	}
}
